"""Every list on the page taken home: clips (zip), Raven, Audacity or CSV, by the CLI's own code."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from audioscan.api import Library
from audioscan.api.moments import Moment, write_moments
from audioscan.web.inputs import BadInput, Choice, Items, Number, Text, json_fields

_EXPORTS = {"raven": ("raven", "selections.txt"), "audacity": ("audacity", "labels.txt"), "csv": ("csv", "moments.csv")}
_MOMENT = {"media_id": (Number(0, whole=True), True), "start": (Number(0), True), "end": (Number(0), True),
           "score": (Number(), False), "label": (Text(), False), "peak": (Number(0), False),
           "onset": (Number(0), False), "offset": (Number(0), False)}
_BODY = {"kind": (Choice(("clips", *_EXPORTS)), True), "moments": (Items(_MOMENT, longest=2000), True),
         "length": (Number(0.1, 600), False)}


async def export(request: Request) -> Response:
    web = request.app.state.web
    body = await json_fields(request, _BODY)
    kind = body["kind"]
    moments = []
    for item in body["moments"]:
        if item["end"] < item["start"]:
            raise BadInput("each moment's 'end' must not come before its 'start'")
        inside = [item[k] for k in ("onset", "peak", "offset") if item[k] is not None]
        if inside != sorted(inside) or any(not item["start"] <= t <= item["end"] for t in inside):
            raise BadInput("each moment's 'onset', 'peak' and 'offset' must lie in that order between its 'start' "
                           "and 'end'")
        moments.append(Moment(web.media_path(item["media_id"]), item["start"], item["end"], item["score"],
                              item["label"] or "", peak=item["peak"], onset=item["onset"], offset=item["offset"]))
    if kind == "clips":
        data = await run_in_threadpool(_clips_zip, web.library, moments, body["length"])
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="clips.zip"'})
    fmt, name = _EXPORTS[kind]
    if fmt == "audacity" and len({m.path for m in moments}) > 1:
        with tempfile.TemporaryDirectory() as folder:
            written = write_moments(moments, fmt, out_dir=Path(folder))
            data = _zip({path.name: path.read_bytes() for path in written})
        return Response(data, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="label-tracks.zip"'})
    text = write_moments(moments, fmt)
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _clips_zip(library: Library, moments: list[Moment], length: float | None) -> bytes:
    """The moments cut as clips (the CLI's own code), with their manifest, in one zip."""
    with tempfile.TemporaryDirectory() as folder:
        report = library.export_clips(moments, Path(folder), length=length)
        files = {path.name: path.read_bytes() for path in [*report.written, report.manifest]}
    return _zip(files)


ROUTES = [Route("/api/export", export, methods=["POST"])]
