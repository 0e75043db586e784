"""The Detectors tab: train, page through detections, suggestions to judge, roll back."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def train(request: Request) -> Response:
    body = await request.json()
    library = request.app.state.web.library
    detector = await run_in_threadpool(lambda: library.train(str(body["name"]), label=body.get("label") or None))
    return JSONResponse(detector.summary())


async def detections(request: Request) -> Response:
    web = request.app.state.web
    params = request.query_params
    version = int(params["version"]) if params.get("version") else None
    detector = await run_in_threadpool(lambda: web.library.detector(params["name"], version=version))
    found = await run_in_threadpool(detector.rescore, float(params.get("threshold", 0.0)))
    page_size, number = int(params.get("per_page", 20)), int(params.get("page", 1))
    chosen = found[(number - 1) * page_size: number * page_size]
    return JSONResponse({"total": len(found), "page": number, "hits": web.hits(chosen, detector.classifier.label),
                         "version": detector.version})


async def suggestions(request: Request) -> Response:
    web = request.app.state.web
    detector = await run_in_threadpool(web.library.detector, request.query_params["name"])
    found = await run_in_threadpool(detector.suggest, int(request.query_params.get("n", 10)))
    return JSONResponse({"hits": web.hits(found, detector.classifier.label)})


async def rollback(request: Request) -> Response:
    body = await request.json()
    detector = await run_in_threadpool(request.app.state.web.library.rollback, str(body["name"]), int(body["version"]))
    return JSONResponse({"version": detector.version})


ROUTES = [Route("/api/train", train, methods=["POST"]), Route("/api/detections", detections),
          Route("/api/suggestions", suggestions), Route("/api/rollback", rollback, methods=["POST"])]
