"""The Search tab: search by an uploaded clip or a stored moment; play and picture a moment."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from audioscan.api import UserError
from audioscan.api.previews import moment_wav, spectrogram_png
from audioscan.web.inputs import (FILTER_FIELDS, MAX_TEXT, BadInput, Number, Text, fields_of, moment_filter,
                                  query_fields)

_SEARCH = {"k": (Number(1, 200, whole=True), False), "media_id": (Number(0, whole=True), False),
           "from_channel": (Number(1, 255, whole=True), False),
           "at": (Number(0), False), "start": (Number(0), False), "end": (Number(0), False),
           "sets": (Text(), False), "per_file": (Number(1, 200, whole=True), False), **FILTER_FIELDS}
_RANGE = {"start": (Number(0), True), "end": (Number(0), True), "channel": (Number(0, 255, whole=True), False)}
# A clip's file name is used only for its extension (FFmpeg guesses the format from it).
_SUFFIX_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789")


async def search(request: Request) -> Response:
    web = request.app.state.web
    async with request.form(max_files=1, max_fields=len(_SEARCH) + 1) as form:
        fields = fields_of({key: value for key, value in form.items() if isinstance(value, str)}, _SEARCH,
                           where="the form")
        k, where = fields["k"] or 12, moment_filter(fields)
        if fields["media_id"] is not None:
            if fields["at"] is None:
                raise BadInput("give 'at' with 'media_id'")
            query = (web.media_path(fields["media_id"]), fields["at"])
            found = await run_in_threadpool(lambda: web.search(query, k=k, per_file=fields["per_file"],
                                                               sets=fields["sets"], where=where,
                                                               from_channel=fields["from_channel"]))
            return JSONResponse({"hits": web.hits(found)})
        upload = form.get("clip")
        if upload is None or isinstance(upload, str):
            raise BadInput("upload a clip, or give media_id and at")
        suffix = Path(upload.filename or "").suffix.lower()[:9]
        suffix = suffix if suffix[1:] and set(suffix[1:]) <= _SUFFIX_CHARS else ".wav"
        with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
            await run_in_threadpool(shutil.copyfileobj, upload.file, handle)
            handle.flush()
            try:
                found = await run_in_threadpool(lambda: web.search(
                    Path(handle.name), k=k, per_file=fields["per_file"], sets=fields["sets"],
                    start=fields["start"] or 0.0, end=fields["end"],
                    where=where))
            except UserError as err:
                raise _as_uploaded(err, Path(handle.name), _uploaded_name(upload.filename)) from None
    return JSONResponse({"hits": web.hits(found)})


def _uploaded_name(filename: str | None) -> str:
    """How an answer names the uploaded clip: its own file name when that is a plain, printable name,
    else "the uploaded clip" (a client may send no name, a path, line breaks, or lone surrogates)."""
    name = Path((filename or "").replace("\\", "/")).name
    return name if name and len(name) <= MAX_TEXT and name.isprintable() else "the uploaded clip"


def _as_uploaded(err: UserError, temporary: Path, shown: str) -> UserError:
    """``err`` speaking of the file the user uploaded rather than the server's temporary copy of it,
    whose path says nothing to the user and something about the server."""
    err.template = err.template.replace(str(temporary), shown).replace(temporary.name, shown)
    err.args = (err.template,)
    return err


def _range(request: Request) -> tuple[int, float, float, int]:
    fields = query_fields(request, _RANGE)
    return int(request.path_params["media_id"]), fields["start"], fields["end"], fields["channel"] or 0


async def audio(request: Request) -> Response:
    media_id, start, end, channel = _range(request)
    source = request.app.state.web.media(media_id, start, end=end)
    body = await run_in_threadpool(lambda: moment_wav(source, start, end=end, channel=channel))
    return _ranged(request, body, "audio/wav")


async def spectrogram(request: Request) -> Response:
    media_id, start, end, channel = _range(request)
    source = request.app.state.web.media(media_id, start, end=end)
    body = await run_in_threadpool(lambda: spectrogram_png(source, start, end=end, channel=channel))
    return Response(body, media_type="image/png", headers={"Cache-Control": "max-age=3600"})


def _ranged(request: Request, body: bytes, media_type: str) -> Response:
    """``body``, or the byte range the browser asked for (so seeking in the player works)."""
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "max-age=3600"}
    wanted = request.headers.get("range", "")
    if wanted.startswith("bytes="):
        first, _, last = wanted[6:].split(",")[0].strip().partition("-")
        if not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) or (last and not last.isdigit()):
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
        start = int(first) if first else max(0, len(body) - int(last))
        stop = min(len(body) - 1, int(last)) if first and last else len(body) - 1
        if start >= len(body) or start > stop:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(body)}"})
        headers["Content-Range"] = f"bytes {start}-{stop}/{len(body)}"
        return Response(body[start: stop + 1], status_code=206, media_type=media_type, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


ROUTES = [Route("/api/search", search, methods=["POST"]), Route("/media/{media_id:int}/audio", audio),
          Route("/media/{media_id:int}/spectrogram.png", spectrogram)]
