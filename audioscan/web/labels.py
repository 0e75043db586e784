"""The labels a listener gives with ✓ / ✗, listed and undone."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audioscan.web.inputs import Flag, LabelName, Number, Text, json_fields, query_fields

_NEW = {"media_id": (Number(0, whole=True), True), "start": (Number(0), True), "end": (Number(0), True),
        "label": (LabelName(), True), "positive": (Flag(), True), "channel": (Number(0, 255, whole=True), False)}


async def list_labels(request: Request) -> Response:
    web = request.app.state.web
    label = query_fields(request, {"label": (Text(), False)})["label"]
    items = await run_in_threadpool(web.library.labels.list, label)
    return JSONResponse({"labels": [item.as_json() for item in items]})


async def add_label(request: Request) -> Response:
    web = request.app.state.web
    body = await json_fields(request, _NEW)
    path = web.media_path(body["media_id"])
    new_id = await run_in_threadpool(lambda: web.library.labels.add(
        path, body["start"], end=body["end"], label=body["label"], negative=not body["positive"], source="web",
        channel=body["channel"] or 0))
    return JSONResponse({"id": new_id})


async def remove_label(request: Request) -> Response:
    await run_in_threadpool(request.app.state.web.library.labels.remove, [int(request.path_params["label_id"])])
    return JSONResponse({"removed": True})


ROUTES = [Route("/api/labels", list_labels, methods=["GET"]), Route("/api/labels", add_label, methods=["POST"]),
          Route("/api/labels/{label_id:int}/delete", remove_label, methods=["POST"])]
