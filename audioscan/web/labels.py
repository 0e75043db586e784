"""The labels a listener gives with ✓ / ✗, listed and undone."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def labels(request: Request) -> Response:
    web = request.app.state.web
    if request.method == "GET":
        items = await run_in_threadpool(web.library.labels.list, request.query_params.get("label"))
        return JSONResponse({"labels": [item.as_json() for item in items]})
    body = await request.json()
    media = web.searcher.snapshot.media[int(body["media_id"])]
    new_id = await run_in_threadpool(lambda: web.library.labels.add(
        media.path, float(body["start"]), float(body["end"]), str(body["label"]),
        negative=not bool(body["positive"]), source="web"))
    return JSONResponse({"id": new_id})


async def remove_label(request: Request) -> Response:
    await run_in_threadpool(request.app.state.web.library.labels.remove, [int(request.path_params["label_id"])])
    return JSONResponse({"removed": True})


ROUTES = [Route("/api/labels", labels, methods=["GET", "POST"]),
          Route("/api/labels/{label_id:int}/delete", remove_label, methods=["POST"])]
