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

_EXPORTS = {"raven": ("raven", "selections.txt"), "audacity": ("audacity", "labels.txt"), "csv": ("csv", "moments.csv")}


async def export(request: Request) -> Response:
    web = request.app.state.web
    body = await request.json()
    kind = str(body["kind"])
    moments = [Moment(str(web.searcher.snapshot.media[int(m["media_id"])].path), float(m["start"]),
                      float(m["end"]), m.get("score"), str(m.get("label") or "")) for m in body["moments"]]
    if kind == "clips":
        data = await run_in_threadpool(_clips_zip, web.library, moments, body.get("length"))
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
        report = library.export_clips(moments, Path(folder), length=float(length) if length else None)
        files = {path.name: path.read_bytes() for path in [*report.written, report.manifest]}
    return _zip(files)


ROUTES = [Route("/api/export", export, methods=["POST"])]
