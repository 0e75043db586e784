"""Which windows a question is about: sites, dates, hours of the night, paths and channels (``--site``,
``--after``/``--before``, ``--hours``, ``--path``, ``--channel``).

A filter picks windows *before* anything is scored: :func:`restrict` gives a snapshot of the
chosen windows alone, so a filtered rescore or search reads and scores only those vectors.  A
window is judged by its start: its clock time is its recording's start plus its offset in the
file, in the recording's own zone, daylight-saving changes included (``media.recorded``).

* ``--hours 02:00-05:00``: the local clock time of the window's start is in [02:00, 05:00);
  a range may cross midnight (``22:00-04:00``).
* ``--after`` / ``--before``: a date (``2024-03-10``, midnight) or a date and time; ``after`` is
  inclusive, ``before`` is not.  Without an offset they are the recorder's local clock time, as
  ``--hours`` is; with one (``2024-03-10T02:00+01:00``, ``Z``) they are instants, which a
  recording whose zone is unknown cannot be placed against (so it is left out).
* A time filter leaves out files whose start is not known; ``--site`` and ``--path`` need none.
* ``--path GLOB``: the file's absolute path, its path in its indexed folder, or its name.
* ``--channel N``: windows of channel N (from 1) of a set that hears each channel apart; a mixed set's
  windows hold every channel, so the filter keeps them (as a label of channel N trains on them).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import KW_ONLY, dataclass
from fnmatch import fnmatch
from typing import Iterable

import numpy as np

from audioscan.indexer.media.decode import MAX_SPLIT_CHANNELS
from audioscan.indexer.media.recorded import RecordingStart
from audioscan.indexer.store.records import MIX_CHANNEL
from audioscan.indexer.store.snapshot import MediaInfo, Snapshot
from audioscan.query.errors import QueryError, quoted

_EPOCH = dt.datetime(1970, 1, 1)
_DAY = 86_400.0
_HOURS = re.compile(r"(?P<a>\d{1,2})(?::(?P<am>\d{2}))?-(?P<b>\d{1,2})(?::(?P<bm>\d{2}))?")


@dataclass(frozen=True)
class Bound:
    """An ``after``/``before`` value: a wall-clock time, or an instant (``aware``) as UTC seconds."""

    seconds: float
    aware: bool
    text: str


@dataclass(frozen=True)
class MomentFilter:
    """What a question is limited to (every part optional; an empty filter keeps everything)."""

    sites: tuple[str, ...] = ()
    after: Bound | None = None
    _: KW_ONLY
    before: Bound | None = None
    hours: tuple[float, float] | None = None  # seconds of the day: [from, to), wrapping past midnight
    paths: tuple[str, ...] = ()
    channels: tuple[int, ...] = ()

    @classmethod
    def parse(cls, *, sites: Iterable[str] = (), after: str | None = None, before: str | None = None,
              hours: str | None = None, paths: Iterable[str] = (), channels: Iterable[int] = ()) -> "MomentFilter":
        """The filter the options' text says, or one sentence on what is wrong with it."""
        chosen = tuple(dict.fromkeys(int(c) for c in channels))
        wrong = [c for c in chosen if not 1 <= c <= MAX_SPLIT_CHANNELS]
        if wrong:
            raise QueryError(f"`channel` {wrong[0]} is not a channel; channels count from 1 (to "
                             f"{MAX_SPLIT_CHANNELS})", value=wrong[0])
        made = cls(tuple(sites), _bound(after, "after") if after else None,
                   before=_bound(before, "before") if before else None, hours=_hours(hours) if hours else None,
                   paths=tuple(paths), channels=chosen)
        if made.after and made.before and made.after.aware == made.before.aware and (
                made.after.seconds >= made.before.seconds):
            raise QueryError(f"`after` {quoted(after)} is not before `before` {quoted(before)}; nothing can match")
        return made

    def __bool__(self) -> bool:
        return bool(self.sites or self.after or self.before or self.hours or self.paths or self.channels)

    @property
    def timed(self) -> bool:
        return bool(self.after or self.before or self.hours)

    def describe(self) -> str:
        """The filter in words, for the sentence that says it matched nothing."""
        parts = [f"site {', '.join(self.sites)}"] if self.sites else []
        parts += [f"after {self.after.text}"] if self.after else []
        parts += [f"before {self.before.text}"] if self.before else []
        if self.hours:
            parts.append(f"hours {_clock(self.hours[0])}-{_clock(self.hours[1])}")
        parts += [f"path {', '.join(self.paths)}"] if self.paths else []
        parts += [f"channel {', '.join(map(str, self.channels))}"] if self.channels else []
        return "; ".join(parts)

    def files(self, media: dict[int, MediaInfo]) -> set[int]:
        """The media ids whose site, path and start (when a time filter needs one) can match."""
        return {media_id for media_id, item in media.items() if self._file_matches(item)}

    def _file_matches(self, item: MediaInfo) -> bool:
        if self.sites and item.site not in self.sites:
            return False
        if self.paths and not any(fnmatch(item.path, glob) or fnmatch(item.rel, glob)
                                  or fnmatch(item.rel.rsplit("/", 1)[-1], glob) for glob in self.paths):
            return False
        return not self.timed or item.recorded is not None

    def windows(self, media: dict[int, MediaInfo], media_ids: np.ndarray, *, starts: np.ndarray,
                channels: np.ndarray) -> np.ndarray:
        """Which windows (given by media id, start in seconds and channel) the filter keeps, as a boolean mask."""
        keep = np.isin(media_ids, np.fromiter(self.files(media), dtype=np.int64))
        if self.channels:
            keep &= np.isin(channels, [MIX_CHANNEL, *self.channels])
        if not self.timed or not keep.any():
            return keep
        local, instant = _clock_seconds(media, media_ids, starts, keep)
        for bound, keep_it in ((self.after, np.greater_equal), (self.before, np.less)):
            if bound is not None:
                values = instant if bound.aware else local
                keep &= ~np.isnan(values) & keep_it(np.nan_to_num(values, nan=0.0), bound.seconds)
        if self.hours:
            of_day = np.mod(local, _DAY)
            lo, hi = self.hours
            keep &= (of_day >= lo) & (of_day < hi) if lo < hi else (of_day >= lo) | (of_day < hi)
        return keep


def restrict(snapshot: Snapshot, where: MomentFilter | None) -> Snapshot:
    """The snapshot's windows the filter keeps, as a snapshot of their own (all of it without a
    filter); one sentence when none is kept."""
    if not where:
        return snapshot
    keep = where.windows(snapshot.media, snapshot.media_ids, starts=snapshot.starts, channels=snapshot.channels)
    if not keep.any():
        raise nothing_matches(where)
    return snapshot.only(keep)


def nothing_matches(where: MomentFilter) -> QueryError:
    return QueryError(f"no indexed moment matches {where.describe()}; 'audioscan index times' and 'audioscan "
                      "index sites' show the starts and sites there are")


def _clock_seconds(media: dict[int, MediaInfo], media_ids: np.ndarray, starts: np.ndarray,
                   keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(local wall-clock seconds, UTC seconds) of each kept window's start; NaN where not kept, and UTC
    NaN where the zone is unknown.  One pass over the windows; zone arithmetic once per file, and
    per window only in the files a clock change falls in."""
    rows = np.flatnonzero(keep)
    files = np.unique(media_ids[rows])
    base_local, base_utc = np.empty(len(files)), np.empty(len(files))
    changes: dict[int, list[tuple[float, float]]] = {}
    for k, media_id in enumerate(files.tolist()):
        item = media[media_id]
        start = item.recorded
        if start is None:  # no clock: its windows are not kept (callers keep only files with a start)
            base_local[k] = base_utc[k] = np.nan
            continue
        if start.tz() is None:
            base_local[k], base_utc[k] = (start.local.replace(fold=0) - _EPOCH).total_seconds(), np.nan
            continue
        base_utc[k] = (start.at(0).astimezone(dt.timezone.utc).replace(tzinfo=None) - _EPOCH).total_seconds()
        base_local[k] = base_utc[k] + _offset(start, 0.0)
        moves = _offset_changes(start, float(item.duration or 0.0))
        if moves:
            changes[k] = moves
    which = np.searchsorted(files, media_ids[rows])
    local, instant = np.full(len(starts), np.nan), np.full(len(starts), np.nan)
    local[rows] = base_local[which] + starts[rows]
    instant[rows] = base_utc[which] + starts[rows]
    for k, moves in changes.items():
        mine = rows[which == k]
        shift = np.zeros(len(mine))
        for at, offset in moves:
            shift[starts[mine] >= at] = offset
        local[mine] += shift
    return local, instant


def _offset(start: RecordingStart, seconds: float) -> float:
    """The UTC offset, in seconds, of the clock ``seconds`` into a recording of known zone."""
    offset = start.at(seconds).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


def _offset_changes(start: RecordingStart, length: float) -> list[tuple[float, float]]:
    """Where in a recording of ``length`` seconds its zone's offset changes (to the millisecond), and the
    offset from then on, relative to the one at its start (a clock change inside a night's file)."""
    first, changes, at = _offset(start, 0.0), [], 0.0
    utc0 = start.at(0).timestamp()
    while _offset(start, length) != _offset(start, at):
        lo, hi = at, length
        while hi - lo > 1e-4:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _offset(start, mid) == _offset(start, at) else (lo, mid)
        whole = math.ceil(utc0 + lo) - utc0  # zones change at whole seconds of UTC
        hi = whole if lo < whole <= hi + 1e-6 else hi
        changes.append((hi, _offset(start, hi) - first))
        at = hi
    return changes


def _bound(text: str, what: str) -> Bound:
    try:
        when = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise QueryError(f"`{what}` {quoted(text)} is not a date (2024-03-10) or a date and time "
                         "(2024-03-10T02:00, with +01:00 for an instant)") from None
    if when.tzinfo is None:
        return Bound((when - _EPOCH).total_seconds(), False, text)
    return Bound((when.astimezone(dt.timezone.utc).replace(tzinfo=None) - _EPOCH).total_seconds(), True, text)


def _hours(text: str) -> tuple[float, float]:
    found = _HOURS.fullmatch(text.strip())
    if not found:
        raise QueryError(f"`hours` {quoted(text)} is not a range of clock times such as 02:00-05:00 "
                         "(22:00-04:00 crosses midnight)")
    a, b = int(found["a"]), int(found["b"])
    am, bm = int(found["am"] or 0), int(found["bm"] or 0)
    if a > 24 or b > 24 or am > 59 or bm > 59 or (a == 24 and am) or (b == 24 and bm):
        raise QueryError(f"`hours` {quoted(text)} holds a time of day that is not one (00:00 to 24:00)")
    lo, hi = (a * 3600 + am * 60) % _DAY, (b * 3600 + bm * 60) % _DAY
    if lo == hi:
        raise QueryError(f"`hours` {quoted(text)} starts where it ends; leave it out for the whole day")
    return lo, hi


def _clock(seconds: float) -> str:
    return f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}"
