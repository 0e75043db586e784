"""The Search tab: search by an uploaded clip or a stored moment; play and picture a moment."""

from __future__ import annotations

import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audioscan.api.previews import moment_wav, spectrogram_png


async def search(request: Request) -> Response:
    web = request.app.state.web
    form = await request.form()
    k = int(form.get("k") or 12)
    if form.get("media_id"):
        found = await run_in_threadpool(web.searcher.search_window, int(form["media_id"]), float(form["at"]), k=k)
        return JSONResponse({"hits": web.hits(found)})
    upload = form.get("clip")
    if upload is None or not hasattr(upload, "read"):
        return JSONResponse({"error": "upload a clip, or give media_id and at"}, status_code=400)
    data = await upload.read()
    suffix = Path(upload.filename or "clip.wav").suffix[:8] or ".wav"
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        start = float(form.get("start") or 0)
        end = float(form["end"]) if form.get("end") else None
        found = await run_in_threadpool(lambda: web.searcher.search_clip(Path(handle.name), k=k, start=start, end=end))
    return JSONResponse({"hits": web.hits(found)})


def _range(request: Request) -> tuple[int, float, float]:
    params = request.query_params
    return int(request.path_params["media_id"]), float(params["start"]), float(params["end"])


async def audio(request: Request) -> Response:
    media_id, start, end = _range(request)
    body = await run_in_threadpool(moment_wav, request.app.state.web.media(media_id, start, end), start, end)
    return _ranged(request, body, "audio/wav")


async def spectrogram(request: Request) -> Response:
    media_id, start, end = _range(request)
    body = await run_in_threadpool(spectrogram_png, request.app.state.web.media(media_id, start, end), start, end)
    return Response(body, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _ranged(request: Request, body: bytes, media_type: str) -> Response:
    """``body``, or the byte range the browser asked for (so seeking in the player works)."""
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "max-age=3600"}
    wanted = request.headers.get("range", "")
    if wanted.startswith("bytes="):
        first, _, last = wanted[6:].split(",")[0].partition("-")
        start = int(first) if first else max(0, len(body) - int(last))
        stop = min(len(body) - 1, int(last)) if first and last else len(body) - 1
        if start >= len(body) or start > stop:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
        headers["Content-Range"] = f"bytes {start}-{stop}/{len(body)}"
        return Response(body[start: stop + 1], status_code=206, media_type=media_type, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


ROUTES = [Route("/api/search", search, methods=["POST"]), Route("/media/{media_id:int}/audio", audio),
          Route("/media/{media_id:int}/spectrogram.png", spectrogram)]
