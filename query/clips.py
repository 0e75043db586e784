"""``export clips``: the moments people found, cut from their sources into files of their own.

Each moment becomes ``<stem>_<hh-mm-ss.mmm>_<label>.<ext>`` in the output folder:
readable, stable (a re-run finds its clips by the manifest and skips those it would cut
again: same span, format, rate and channels), never colliding (a counter is added), never
outside the folder.  ``length`` makes fixed-length clips centred on the moment's peak -
where its sound is, not the middle of the windows that found it - (the original tool's 8 s
clips), clamped inside the file; ``tight`` cuts only the sound's estimated onset to offset;
``pad`` widens the span or the tight cut (a fixed ``length`` takes no pad).  Every option is
honoured in every format or refused before anything is cut.  ``clips.csv`` lists what each
clip is: ``source,start,end,clip_start,clip_end,label,score,clip,channel``.

A moment heard on one channel (a set built with ``--channels split``) is cut as that channel alone
(a mono clip, ``_ch2`` in its name) unless ``channels`` asks for a layout; an mp4 clip keeps its
source's sound whole (the video's audio track), and its manifest row names the channel.
"""

from __future__ import annotations

import csv
import io
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from audioscan.indexer.errors import MediaError
from audioscan.indexer.media.cut import AAC_RATES, audio_shape, read_span, write_audio, write_video
from audioscan.indexer.media.decode import frame_rate
from audioscan.query.errors import QueryError
from audioscan.query.moments import Moment
from audioscan.query.export import unique_name, write_file
from audioscan.query.formats import safe_cell, unsafe_cell
from audioscan.query.timecode import clock

CLIP_FORMATS = ("wav", "flac", "mp4")
MANIFEST = "clips.csv"
MANIFEST_COLUMNS = ["source", "start", "end", "clip_start", "clip_end", "label", "score", "clip", "channel"]
# The manifest as written before channels: still ours, read with every clip of the whole file (channel 0).
_MANIFEST_BEFORE_CHANNELS = MANIFEST_COLUMNS[:-1]


@dataclass(frozen=True)
class ClipReport:
    written: list[Path]
    skipped: int
    _: KW_ONLY
    failed: list[tuple[str, str]]
    manifest: Path


def clip_span(item: Moment, length: float | None, *, pad: float, tight: bool = False) -> tuple[float, float]:
    """Where the clip of ``item`` starts and ends, inside its file."""
    duration = item.duration if item.duration is not None else float("inf")
    if length is not None:
        start = min(max(0.0, item.centre - length / 2), max(0.0, duration - length))
        return start, min(duration, start + length)
    begin, end = item.start, item.end
    if tight and item.onset is not None and item.offset is not None:
        begin, end = item.onset, item.offset
    return max(0.0, begin - pad), min(duration, end + pad)


def export_clips(items: Iterable[Moment], out_dir: Path, *, fmt: str = "wav", length: float | None = None,
                 pad: float = 0.0, rate: int | None = None, channels: int | None = None,
                 progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
                 tight: bool = False) -> ClipReport:
    """Cut every item into ``out_dir``; a clip already listed in its manifest is skipped only when
    its file is there with the same span, format, rate and channels (another option cuts anew).

    Clips get names no file there has; a ``clips.csv`` there that is not a manifest we wrote
    (another header) is refused unless ``overwrite``, so a user's own table is never lost."""
    items = list(items)
    _check_options(fmt, length, pad=pad, rate=rate, channels=channels, tight=tight)
    if tight and any(item.onset is None for item in items):
        bare = sum(item.onset is None for item in items)
        raise QueryError(f"`tight` cuts each sound's estimated onset to offset, and {bare} of these {len(items)} "
                         "moments carry none (labels and listed spans are cut as they are); leave `tight` out")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QueryError(f"cannot create {out_dir} ({err.strerror or err})") from None
    manifest = out_dir / MANIFEST
    rows = _read_manifest(manifest, overwrite)
    known: dict[tuple, list[dict]] = {}
    for row in rows:
        known.setdefault(_key(row, Path(row["clip"]).suffix), []).append(row)
    taken = {path.name.lower() for path in out_dir.iterdir()}
    written, failed, skipped = [], [], 0
    for number, item in enumerate(items, start=1):
        clip_start, clip_end = clip_span(item, length, pad=pad, tight=tight)
        row = {"source": item.path, "start": f"{item.start:.3f}", "end": f"{item.end:.3f}",
               "clip_start": f"{clip_start:.3f}", "clip_end": f"{clip_end:.3f}", "label": item.marked_label,
               "score": "" if item.score is None else f"{item.score:.4f}", "channel": str(item.channel)}
        suffix = "." + (fmt if fmt != "mp4" or frame_rate(Path(item.path)) else "wav")
        alone = item.channel if channels is None and suffix != ".mp4" else 0  # the one channel cut, if any
        if any(_holds(out_dir / before["clip"], Path(item.path), rate, 1 if alone else channels)
               for before in known.get(_key(row, suffix), [])):
            skipped += 1
        else:
            name = unique_name(_clip_stem(item, clip_start), suffix, taken=taken)
            try:
                _cut(Path(item.path), out_dir / name, start=clip_start, end=clip_end, fmt=suffix[1:], rate=rate,
                     channels=channels, alone=alone)
            except MediaError as err:
                failed.append((item.path, str(err)))
            else:
                row["clip"] = name
                rows.append(row)
                known.setdefault(_key(row, suffix), []).append(row)
                written.append(out_dir / name)
        if progress:
            progress(number, len(items))
    _write_manifest(manifest, rows)
    return ClipReport(written, skipped, failed=failed, manifest=manifest)


def _check_options(fmt: str, length: float | None, pad: float, rate: int | None, channels: int | None,
                  tight: bool) -> None:
    """Refuse, in one sentence, options that contradict each other or that ``fmt`` cannot store,
    before anything is cut: an option is honoured in every clip or the export does not start."""
    if fmt not in CLIP_FORMATS:
        raise QueryError(f"`format` {fmt} is not a clip format; use one of {', '.join(CLIP_FORMATS)}", value=fmt)
    if length is not None and length <= 0 or pad < 0:
        raise QueryError("`length` must be positive and `pad` not negative (seconds)")
    if length is not None and (tight or pad):
        other = "`tight` cuts each sound's own extent" if tight else "`pad` widens each moment's own span"
        raise QueryError(f"`length` cuts clips of one length around each peak and {other}; give one of them")
    if rate is not None and rate <= 0:
        raise QueryError(f"`rate` {rate} is not a sample rate; give samples per second, such as 16000", value=rate)
    if channels not in (None, 1, 2):
        raise QueryError(f"`channels` {channels} is not a layout a clip is cut to; give 1 (mono) or 2 (stereo)",
                         value=channels)
    if fmt == "mp4" and rate is not None and rate not in AAC_RATES:
        raise QueryError(f"mp4 clips carry AAC sound, which cannot be stored at {rate} Hz; give `rate` "
                         f"{', '.join(str(r) for r in sorted(AAC_RATES))}, or `format` wav or flac", value=rate)


def _holds(clip: Path, source: Path, rate: int | None, channels: int | None) -> bool:
    """Whether ``clip`` is on disk with the rate and channels asked for (by default the source's),
    so that a run with other options writes its own clip instead of counting this one."""
    shape = audio_shape(clip) if clip.is_file() else None
    if shape is None:
        return False
    if rate is None or channels is None:
        own = audio_shape(source)
        if own is None:
            return False
        rate, channels = rate or own[0], channels or own[1]
    return shape == (rate, channels)


def _clip_stem(item: Moment, clip_start: float) -> str:
    """``<source stem>_<hh-mm-ss.mmm>[_<label>]``: where the clip comes from and what it is, with the
    label whole (:func:`unique_name` replaces its unsafe characters rather than cutting at them)."""
    label = f"_{item.marked_label}" if item.label else ""
    channel = f"_ch{item.channel}" if item.channel else ""
    return f"{Path(item.path).stem}_{clock(clip_start)}{channel}{label}"


def _cut(source: Path, target: Path, start: float, end: float, fmt: str, rate: int | None,
         channels: int | None, alone: int = 0) -> None:
    """Cut ``[start, end)`` of ``source`` into ``target``: of channel ``alone`` only (from 1) when given."""
    if not source.is_file():
        raise MediaError(f"{source} is not on disk any more")
    if end <= start:
        raise MediaError(f"{start:g}-{end:g} s is empty in {source.name}")
    if fmt == "mp4":
        write_video(source, target, start=start, end=end, rate=rate, channels=channels)
        return
    span = read_span(source, start, end=end, rate=rate, channels=channels)
    if alone:
        if alone > span.samples.shape[0]:
            raise MediaError(f"{source.name} has {span.samples.shape[0]} channel(s) now, not channel {alone}; "
                             "index it again")
        span = replace(span, samples=span.samples[alone - 1: alone], layout="mono")
    write_audio(target, span, container_format=fmt)


def _key(row: dict, suffix: str) -> tuple:
    """What makes two clips the same besides rate and channels: source, span, label, channel heard and format."""
    return row["source"], row["clip_start"], row["clip_end"], row["label"], row["channel"] or "0", suffix.lower()


def _read_manifest(path: Path, overwrite: bool) -> list[dict]:
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    if text.split("\n", 1)[0].strip() not in (",".join(MANIFEST_COLUMNS), ",".join(_MANIFEST_BEFORE_CHANNELS)):
        if overwrite:
            return []
        raise QueryError(f"{path} is already there and is not a clip manifest audioscan wrote; choose another "
                         "`out_dir`, or give `overwrite` to replace it")
    rows = list(csv.DictReader(io.StringIO(text)))
    return [{key: unsafe_cell(row.get(key) or "") for key in MANIFEST_COLUMNS} for row in rows]


def _write_manifest(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(str(row[key])) for key in MANIFEST_COLUMNS])
    write_file(path, buffer.getvalue())
