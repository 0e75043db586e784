"""The Library tab: what the store holds, and a build started from the page."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audioscan.api import UserError
from audioscan.web.inputs import BadInput, Text, json_fields

LOG = logging.getLogger("audioscan.web")


async def library_view(request: Request) -> Response:
    web = request.app.state.web
    status = await run_in_threadpool(web.library.status)
    labels = await run_in_threadpool(web.library.labels.list)
    return JSONResponse({"status": status, "labels": sorted({item.label for item in labels}),
                         "detectors": await run_in_threadpool(web.library.detectors), "build": web.build_state})


async def build_state(request: Request) -> Response:
    return JSONResponse(request.app.state.web.build_state)


async def build(request: Request) -> Response:
    web = request.app.state.web
    body = await json_fields(request, {"folder": (Text(longest=4096), True)})
    folder = Path(body["folder"]).expanduser()
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a folder")
    if not web.build_lock.acquire(blocking=False):
        return JSONResponse({"error": "a build started from this page is running; wait for it"}, status_code=409)
    web.build_state = {"running": True, "folder": str(folder), "files": 0, "windows": 0, "error": None}

    def progress(files: int, windows: int) -> None:
        web.build_state.update(files=files, windows=windows)

    def run() -> None:
        try:
            report = web.library.build(folder, progress=progress)
            web.build_state.update(report=report.as_json())
        except UserError as err:
            web.build_state.update(error=str(err))
        except Exception as err:  # noqa: BLE001 - whatever ends a build must reach the page, not vanish
            LOG.exception("the build of %s started from the page failed", folder)
            first = (str(err).strip().splitlines() or [""])[0][:200]
            web.build_state.update(error=f"the build failed ({type(err).__name__}: {first}); the files committed so "
                                         "far are kept, and the server's log has the details")
        finally:
            web.build_state["running"] = False
            web.build_lock.release()

    threading.Thread(target=run, daemon=True, name="web-build").start()
    return JSONResponse(web.build_state, status_code=202)


ROUTES = [Route("/api/library", library_view), Route("/api/build", build_state, methods=["GET"]),
          Route("/api/build", build, methods=["POST"])]
