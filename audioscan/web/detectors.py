"""The Detectors tab: train, page through detections, detections over time, suggestions to judge,
roll back."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audioscan.api.summaries import PERIODS, detections_over_time
from audioscan.web.inputs import FILTER_FIELDS, Choice, Number, Text, json_fields, moment_filter, query_fields

_DETECTIONS = {"name": (Text(), True), "version": (Number(1, whole=True), False), "threshold": (Number(0, 1), False),
               "page": (Number(1, 1e6, whole=True), False), "per_page": (Number(1, 200, whole=True), False),
               **FILTER_FIELDS}


async def train(request: Request) -> Response:
    body = await json_fields(request, {"name": (Text(), True), "label": (Text(), False)})
    library = request.app.state.web.library
    detector = await run_in_threadpool(lambda: library.train(body["name"], label=body["label"]))
    return JSONResponse(detector.summary())


async def detections(request: Request) -> Response:
    web = request.app.state.web
    params = query_fields(request, _DETECTIONS)
    detector = await run_in_threadpool(lambda: web.library.detector(params["name"], version=params["version"]))
    where = moment_filter(params)
    found = await run_in_threadpool(lambda: detector.rescore(params["threshold"] or 0.0, where=where))
    page_size, number = params["per_page"] or 20, params["page"] or 1
    chosen = found[(number - 1) * page_size: number * page_size]
    return JSONResponse({"total": len(found), "page": number, "hits": web.hits(chosen, detector.classifier.label),
                         "version": detector.version})


async def summary(request: Request) -> Response:
    """Detections per hour, day or site with the hours of audio behind each (``rescore --summary``),
    for the tab's chart."""
    web = request.app.state.web
    params = query_fields(request, {"name": (Text(), True), "by": (Choice(tuple(PERIODS)), True),
                                    "threshold": (Number(0, 1), False), **FILTER_FIELDS})
    where = moment_filter(params)  # the whole request is checked before any work
    detector = await run_in_threadpool(web.library.detector, params["name"])
    counts = await run_in_threadpool(lambda: detections_over_time(
        detector, params["by"], threshold=params["threshold"] or 0.0, where=where))
    return JSONResponse({"by": params["by"], "periods": [{"period": c.period, "detections": c.detections,
                                                           "hours": round(c.hours, 4)} for c in counts]})


async def suggestions(request: Request) -> Response:
    web = request.app.state.web
    params = query_fields(request, {"name": (Text(), True), "n": (Number(1, 200, whole=True), False),
                                    **FILTER_FIELDS})
    detector = await run_in_threadpool(web.library.detector, params["name"])
    found = await run_in_threadpool(detector.suggest, params["n"] or 10, moment_filter(params))
    return JSONResponse({"hits": web.hits(found, detector.classifier.label)})


async def rollback(request: Request) -> Response:
    body = await json_fields(request, {"name": (Text(), True), "version": (Number(1, whole=True), True)})
    detector = await run_in_threadpool(request.app.state.web.library.rollback, body["name"], body["version"])
    return JSONResponse({"version": detector.version})


ROUTES = [Route("/api/train", train, methods=["POST"]), Route("/api/detections", detections),
          Route("/api/summary", summary), Route("/api/suggestions", suggestions), Route("/api/rollback", rollback, methods=["POST"])]
