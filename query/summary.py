"""Detections over time: counts per hour, day or site, each with the hours of audio behind it.

A count means little without the effort behind it (ten owls in one hour of recording is not ten
owls in forty), so each period carries the audio that was scored in it: the stretches its windows
cover (overlapping windows counted once), cut at the period's boundaries on the recording's own
clock, daylight-saving changes included.  A detection falls in the period of its start.  Hours and
days are the recorder's local clock (``2024-03-31T02`` is 02:00-03:00 there); a file whose start is
not known counts under the period ``unknown``; a file no site holds, under the site ``none``.  In a
set that hears each channel apart every channel is a stream of its own, which detections come from,
so each channel's audio counts (three microphones for an hour are three hours scored).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from audioscan.indexer.media.recorded import RecordingStart
from audioscan.indexer.store.snapshot import Snapshot, stream_parts
from audioscan.query.moments import Moment

PERIODS = ("hour", "day", "site")
UNKNOWN = "unknown"
NO_SITE = "none"


@dataclass(frozen=True)
class PeriodCount:
    """One period: its name, the detections that start in it, and the hours of audio scored in it."""

    period: str
    detections: int
    hours: float


def summarise(found: list[Moment], snapshot: Snapshot, *, by: str) -> list[PeriodCount]:
    """``found`` counted per period ``by`` (hour, day or site), beside the audio of ``snapshot``'s
    windows (the windows that were scored) in each period, by period."""
    seconds: dict[str, float] = {}
    for stream, spans in _covered(snapshot).items():
        item = snapshot.media[stream_parts(stream)[0]]
        for key, length in _split(spans, item.recorded, item.site, by):
            seconds[key] = seconds.get(key, 0.0) + length
    counts: dict[str, int] = {}
    for moment in found:
        key = _key_of(moment.recording, moment.site, moment.start, by)
        counts[key] = counts.get(key, 0) + 1
    return [PeriodCount(key, counts.get(key, 0), seconds.get(key, 0.0) / 3600)
            for key in sorted(set(seconds) | set(counts), key=lambda key: (key == UNKNOWN, key))]


def _covered(snapshot: Snapshot) -> dict[int, list[tuple[float, float]]]:
    """Per stream (a file, or one channel of it), the stretches its windows cover (merged), inside the
    file's duration."""
    streams = snapshot.streams
    order = np.lexsort((snapshot.starts, streams))
    covered: dict[int, list[tuple[float, float]]] = {}
    for stream, start, end in zip(streams[order].tolist(), snapshot.starts[order].tolist(),
                                  snapshot.ends[order].tolist()):
        duration = snapshot.media[stream_parts(stream)[0]].duration
        end = min(end, duration) if duration else end
        spans = covered.setdefault(stream, [])
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        elif end > start:
            spans.append((start, end))
    return covered


def _key_of(start: RecordingStart | None, site: str | None, seconds: float, by: str) -> str:
    if by == "site":
        return site or NO_SITE
    if start is None:
        return UNKNOWN
    clock = start.at(seconds)
    return f"{clock:%Y-%m-%dT%H}" if by == "hour" else f"{clock:%Y-%m-%d}"


def _split(spans: list[tuple[float, float]], start: RecordingStart | None, site: str | None,
           by: str) -> list[tuple[str, float]]:
    """(period, seconds) of the covered ``spans`` of one file, cut where its clock enters a new period."""
    if by == "site" or start is None:
        return [(_key_of(start, site, 0.0, by), sum(b - a for a, b in spans))]
    out = []
    for a, b in spans:
        at = a
        while at < b:
            following = min(b, at + _to_next_period(start, at, by))
            out.append((_key_of(start, site, at, by), following - at))
            at = following
    return out


def _to_next_period(start: RecordingStart, seconds: float, by: str) -> float:
    """Seconds from ``seconds`` into the recording to the next hour or midnight on its clock."""
    clock = start.at(seconds)
    wall = clock.replace(tzinfo=None)
    if by == "hour":
        step = 3600 - (wall.minute * 60 + wall.second + wall.microsecond / 1e6)
        return max(step, 1e-6)
    midnight = dt.datetime.combine(wall.date() + dt.timedelta(days=1), dt.time())
    if clock.tzinfo is None:
        return (midnight - wall).total_seconds()
    # Across a clock change the local day is 23 or 25 hours long: count it in instants.
    next_instant = midnight.replace(tzinfo=clock.tzinfo).astimezone(dt.timezone.utc)
    return max((next_instant - clock.astimezone(dt.timezone.utc)).total_seconds(), 1e-6)
