"""Every list on the page taken home: clips (zip), Raven, Audacity or CSV, by the CLI's own code."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from audioscan.api import Library
from audioscan.api.moments import Moment, moments_text, write_moments
from audioscan.api.previews import MAX_SPAN_SECONDS
from audioscan.web.inputs import BadInput, Choice, Items, NotIndexed, Number, Text, json_fields

_EXPORTS = {"raven": ("raven", "selections.txt"), "audacity": ("audacity", "labels.txt"), "csv": ("csv", "moments.csv")}
# The page's longest list (a search's k and a page of detections stop at 200); clips are cut by the
# player's own bound each, and half an hour in all, so one request cannot fill the server's memory.
MAX_MOMENTS = 200
MAX_CLIPS_SECONDS = 1800.0
# As the player's range check: the page's times are rounded to milliseconds, and a header's
# duration may differ from the decoded one by a frame.
_END_SLACK_SECONDS = 1.0
_MOMENT = {"media_id": (Number(0, whole=True), True), "start": (Number(0), True), "end": (Number(0), True),
           "score": (Number(), False), "label": (Text(), False), "peak": (Number(0), False),
           "onset": (Number(0), False), "offset": (Number(0), False), "channel": (Number(0, 255, whole=True), False)}
_BODY = {"kind": (Choice(("clips", *_EXPORTS)), True), "moments": (Items(_MOMENT, longest=MAX_MOMENTS), True),
         "length": (Number(0.1, MAX_SPAN_SECONDS), False)}


async def export(request: Request) -> Response:
    web = request.app.state.web
    body = await json_fields(request, _BODY)
    kind = body["kind"]
    files = await run_in_threadpool(web.library.media)
    moments = [_moment(number, item, files) for number, item in enumerate(body["moments"])]
    if kind == "clips":
        _check_clips(moments, body["length"])
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
    text = moments_text(moments, fmt)
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _moment(number: int, item: dict, files: Mapping[int, Any]) -> Moment:
    """The moment ``moments[number]`` of a request, refused (naming it) when it is not a stretch of
    its indexed file: an export holds every moment it was given or none."""
    where = f"'moments[{number}]'"
    media = files.get(item["media_id"])
    if media is None:
        raise NotIndexed(f"{where} names media {item['media_id']}, which is not indexed")
    start, end = item["start"], item["end"]
    if end < start:
        raise BadInput(f"{where} ends at {end:g} s, before its start at {start:g} s")
    inside = [item[k] for k in ("onset", "peak", "offset") if item[k] is not None]
    if inside != sorted(inside) or any(not start <= t <= end for t in inside):
        raise BadInput(f"{where} needs its 'onset', 'peak' and 'offset' in that order between its 'start' and 'end'")
    duration = media.duration or 0.0
    if start >= duration or end > duration + _END_SLACK_SECONDS:
        raise BadInput(f"{where} ({start:g}-{end:g} s) lies outside its file {Path(media.path).name}, which lasts "
                       f"{duration:g} s")
    return Moment(media.path, start, end=end, score=item["score"], label=item["label"] or "", duration=media.duration,
                  peak=item["peak"], onset=item["onset"], offset=item["offset"], channel=item["channel"] or 0)


def _check_clips(moments: list[Moment], length: float | None) -> None:
    """Refuse, naming the moment, a clip longer than the player serves or empty, and a request whose
    clips together would last longer than :data:`MAX_CLIPS_SECONDS`, before anything is cut."""
    spans = [length or item.end - item.start for item in moments]  # 'length' itself is bounded as a field
    for number, span in enumerate(spans):
        if not 0 < span <= MAX_SPAN_SECONDS:
            raise BadInput(f"'moments[{number}]' would cut a clip of {span:g} s; a clip lasts more than 0 and at most "
                           f"{MAX_SPAN_SECONDS:g} s (give 'length' for one of a set length)")
    total = sum(spans)
    if total > MAX_CLIPS_SECONDS:
        raise BadInput(f"the clips would last {total:g} s in all; one export cuts {MAX_CLIPS_SECONDS:g} s at most")


def _clips_zip(library: Library, moments: list[Moment], length: float | None) -> bytes:
    """The moments cut as clips (the CLI's own code), with their manifest, in one zip; a moment
    that cannot be cut is named in the answer, never left out of the zip."""
    with tempfile.TemporaryDirectory() as folder:
        report = library.export_clips(moments, Path(folder), length=length)
        if report.failed:
            source, reason = report.failed[0]
            number = next(n for n, item in enumerate(moments) if item.path == source)
            raise BadInput(f"'moments[{number}]' could not be cut: {reason}")
        files = {path.name: path.read_bytes() for path in [*report.written, report.manifest]}
    return _zip(files)


ROUTES = [Route("/api/export", export, methods=["POST"])]
