"""From scored windows to moments: one moment per sound, whatever part of the list is asked for.

Search and rescore both end here.  A moment is a sound, found from the profile of its
file: every window of the file with its rank (cosine similarity for search; the
classifier's decision value for detections - a calibrated probability is flat over whole
stretches and would tie).  Windows are offered best first (:class:`Sounds`); a window that
belongs to no sound found so far is the best window of a new one, whose windows are those
around it down to the valleys on both sides.  Which sounds a file holds is thus a function
of its profile alone, never of how many moments were asked for or where a cut fell: the
first n moments of any longer list are the moments of a list of n.

Two rules keep one sound one moment:

* **valleys**: walking away from a sound's best window, its windows end where the profile,
  having fallen, rises again by more than ``VALLEY_DEPTH`` of the sound's height above the
  level around it (a wiggle of one sound rises less); a window whose walk reaches a sound
  found before without such a valley on the way is a shoulder of that sound, and one beside
  a better window of a sound found before lies on its flank;
* **gaps**: a sound whose best window holds the peak of a sound found before, or whose peak
  lies between that sound's onset and offset, is that sound.  Closer than that, the window
  that hears the lesser best hears the greater too, and the windows cannot say there were
  two: two sounds are two moments when their peaks lie more than about half a window apart
  (the lesser's best window, centred on it, reaching half a window each way), and one
  sound's pieces are one moment.  ``bench/recorded_bench.py`` counts the detections of
  each take.

:func:`locate` reads a sound's ``peak``, ``onset`` and ``offset`` from the windows of its
sound.  Its moment spans its best window, widened to the edges of the windows that hold the
sound where it reaches beyond, and kept short of the moments of its file found before (so
moments never overlap): the window that matched best and what it heard, not every window
that heard some of it (nine 8 s windows 1 s apart hold some of a 1 s knock).
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from audioscan.indexer.store.snapshot import stream_parts
from audioscan.query.moments import Moment

# A window counts as evidence of where the sound is when it scores at least this far from the
# level around the moment to its best.  That level is a low percentile of the file's windows
# starting within four windows of its best: not the lowest (often a dip right after the sound,
# far under the room's level), not the median (most windows over a short sound hold it); four
# windows, so that a sound lasting two windows still leaves most of them to the room.
CORE_FRACTION = 0.5
BACKGROUND_PERCENTILE = 25
_LEVEL_WINDOWS = 4
# Where the sound is, its extent: the windows scoring at least this share of the way from the level
# around the moment to its best all hold the sound (:func:`locate`).  Higher than ``CORE_FRACTION``: an
# 8 s window that holds any part of a sound scores far above the room's windows, so halfway up takes
# in windows that hold only an edge of it, and one moment's extent reached 10-20x its take's length.
EXTENT_FRACTION = 0.8
# The peak is the middle of the stretch whose evidence stands within this share of its best
# (:func:`_covered_most`): a sound longer than the windows' step makes the evidence a plateau, and
# where on it the highest step falls is the noise of the scores, not where the sound is.
PEAK_SHARE = 0.9
# Walking away from a sound's best window, a rise of more than this share of the sound's height
# above the level around it, after a fall, is the next sound; a smaller one is a wiggle of this one.
VALLEY_DEPTH = 0.25


class Values(Protocol):
    """What a profile's ranks and scores are read through: an index or a slice (an array, or values
    computed as they are read)."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: int | slice) -> Any: ...


@dataclass(frozen=True)
class Profile:
    """Every window of one file, by start: where it lies, what ranks it and what is shown for it
    (``ranks`` and ``scores`` may be read lazily: anything that reads like an array by index and slice)."""

    starts: np.ndarray
    ends: np.ndarray
    _: KW_ONLY
    ranks: Values
    scores: Values


# The profile of a stream (one file's mix, or one channel of it), by its key (``snapshot.stream_key``).
ProfileOf = Callable[[int], Profile]


@dataclass(frozen=True)
class _File:
    """A file's profile and the sounds found in it so far: which sound each window belongs to
    (-1: none yet), each sound's peak, onset and offset, its best window and its moment's span."""

    profile: Profile
    owner: np.ndarray
    _: KW_ONLY
    sounds: list[tuple[float, float, float]] = field(default_factory=list)
    bests: list[int] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)


class Sounds:
    """The moments of one set's windows, offered best first; one moment per sound (module docstring).
    ``paths``: each media file's path, by media id.

    ``spread``: the standard deviation of the ranks over the set (or a fixed sample of it), the
    least height a sound is judged by: in a file that is one sound from end to end, no window
    lies at the room's level, and wiggles far smaller than the library's spread are not valleys.
    ``decision``: ranks are a classifier's decision values, which each moment carries."""

    def __init__(self, paths: dict[int, str], profile_of: ProfileOf, *, spread: float, decision: bool = False) -> None:
        self._paths, self._profile_of, self._spread, self._decision = paths, profile_of, spread, decision
        self._files: dict[int, _File] = {}

    def offer(self, stream: int, start: float) -> Moment | None:
        """The moment of the sound whose best window is this one (of ``stream``, a file's mix or one
        channel of it, starting at ``start``), or None when it belongs to a sound found before (or is
        not in its profile).  Each stream is a signal of its own: a sound on two channels is two moments."""
        found = self._files.get(stream)
        if found is None:
            profile = self._profile_of(stream)
            found = self._files[stream] = _File(profile, np.full(len(profile.starts), -1))
        starts = found.profile.starts
        i = int(np.searchsorted(starts, start))
        if i == len(starts) or starts[i] != start or found.owner[i] >= 0:
            return None
        best = _climb(found, i)
        ranks = found.profile.ranks
        slope = [j for j in (best - 1, best + 1) if 0 <= j < len(ranks) and ranks[j] > ranks[best]]
        if slope:  # on the flank of a sound found before (only those are better and still beside it)
            found.owner[best] = found.owner[slope[0]]
            return None
        return self._new_sound(stream, found, best)

    def _new_sound(self, stream: int, found: _File, best: int) -> Moment | None:
        p, owner = found.profile, found.owner
        ranks = p.ranks
        width = float(p.ends[best] - p.starts[best])
        reach = _LEVEL_WINDOWS * width
        near = slice(*np.searchsorted(p.starts, [p.starts[best] - reach, p.starts[best] + reach]))
        level = float(np.percentile(ranks[near], BACKGROUND_PERCENTILE))
        height = float(ranks[best]) - level
        bar, rise = level + CORE_FRACTION * height, VALLEY_DEPTH * max(height, self._spread)
        left, met_left = _walk(found, best, -1, rise, bar)
        right, met_right = _walk(found, best, 1, rise, bar)
        mine = slice(left, right + 1)
        for met in (met_left, met_right):
            if met < 0:
                continue
            between = ranks[min(best, found.bests[met]): max(best, found.bests[met]) + 1]
            if ranks[best] - between.min() <= rise:  # no valley on the way: a shoulder of that sound
                owner[mine] = met
                return None
        peak, onset, offset = locate(p.starts[mine], p.ends[mine], ranks=ranks[mine], background=level)
        held = [n for n, (before, on, off) in enumerate(found.sounds)
                if p.starts[best] <= before <= p.ends[best] or on <= peak <= off]
        if held:  # one window holds both, or it lies inside a better one: the windows cannot tell them apart
            owner[mine] = held[0]
            return None
        before, after = p.starts[p.starts <= onset], p.ends[p.ends >= offset]  # window edges around the sound
        begin = min(float(p.starts[best]), float(before.max()) if len(before) else onset)
        end = max(float(p.ends[best]), float(after.min()) if len(after) else offset)
        for before_begin, before_end in found.spans:  # moments found before keep their stretch
            if before_end <= peak:
                begin = max(begin, before_end)
            elif before_begin >= peak:
                end = min(end, before_begin)
        peak, onset, offset = (float(np.clip(x, begin, end)) for x in (peak, onset, offset))
        owner[mine] = len(found.sounds)
        found.sounds.append((peak, onset, offset))
        found.bests.append(best)
        found.spans.append((begin, end))
        media_id, channel = stream_parts(stream)
        return Moment(self._paths[media_id], begin, end=end, score=float(p.scores[best]), peak=peak, onset=onset,
                      offset=offset, decision=float(ranks[best]) if self._decision else None, channel=channel)


def _climb(found: _File, i: int) -> int:
    """The best window of the hill ``i`` stands on among windows of no sound yet (``i`` itself
    when windows come best first; an approximate index may have missed a better neighbour)."""
    ranks, owner = found.profile.ranks, found.owner
    while True:
        better = [j for j in (i - 1, i + 1) if 0 <= j < len(ranks) and owner[j] < 0 and ranks[j] > ranks[i]]
        if not better:
            return i
        i = max(better, key=lambda j: ranks[j])


def _walk(found: _File, best: int, step: int, rise: float, bar: float) -> tuple[int, int]:
    """Walk from ``best`` one way: ``(the last window of the sound that way, the sound met there
    (-1: none))``.

    The core runs on from ``best`` while windows score at least ``bar``.  The walk stops at the
    file's end, at a window that overlaps no window of the core (it cannot hold what they
    hold), at a window of a sound found before, or where the profile rises more than ``rise``
    over its lowest point so far (the sound then ends at that valley)."""
    p, owner = found.profile, found.owner
    ranks = p.ranks
    low, low_at, j, edge = float(ranks[best]), best, best, best
    while True:
        k = j + step
        if not 0 <= k < len(ranks) or not (p.starts[k] < p.ends[edge] and p.ends[k] > p.starts[edge]):
            return j, -1
        if owner[k] >= 0:
            return j, int(owner[k])
        if ranks[k] > low + rise:
            return low_at, -1
        j = k
        if ranks[k] < low:
            low, low_at = float(ranks[k]), k
        if edge == k - step and ranks[k] >= bar:
            edge = k


def locate(starts: np.ndarray, ends: np.ndarray, *, ranks: np.ndarray, background: float) -> tuple[float, float, float]:
    """Peak, onset and offset of the sound a moment's windows point to.

    The peak is the instant the evidence points to: each window counts, for every instant it
    holds, by how far it scores above or below the middle (``CORE_FRACTION``) of the way from
    ``background`` (the level around the moment) to the best, so the score profile is matched
    against the shape of a window (:func:`_covered_most`).  A window scoring under the middle
    counts against the instants it holds: a sound at 4.5 s of a file is held by the windows
    starting at 0-4 s and not by those starting at 5-7 s, and only the latter place it before 5 s.
    Windows beside a sound that score nearly as well as those holding it (they hold something
    like it) cover its neighbourhood but not the sound itself; the windows holding it all cover it.

    The extent comes from the core: the unbroken stretch of windows around the best that score
    at least ``EXTENT_FRACTION`` of the way from ``background`` to the best.  If they all share an
    instant, they hold the whole sound, and so may more of its neighbours: the core grows from the
    best window, its better neighbour first, through windows scoring at least ``CORE_FRACTION`` of the
    way up while all of them still share an instant (:func:`_shared`), and the sound runs from their
    latest start to their earliest end - the more windows hold it, the tighter (with 3 s windows the
    high core is often the best window alone, which says no more than the window).  If they share
    none (features that keep a sound's loudest frames make windows holding part of it score as
    well), the core runs from a window ending at the onset to one starting at the offset: the sound
    lies between its earliest end and its latest start.  Either way the sound lies between those two
    times (never narrower than the windows' step, the finest the cut can tell, and always holding the
    peak).

    Measured on recorded foley (``bench/recorded_bench.py``, LOGMEL 8 s / 1 s, seeds 1 / 2), search's
    peak error median / p90 went from 0.45 / 1.89 s and 0.53 / 5.30 s (the core at halfway, evidence
    above a tenth of the way, its highest step) to 0.41 / 1.39 s and 0.34 / 2.52 s, and the extent's
    median from 1.19 and 2.88 to 0.76 and 1.06 times the take's length (BIRDNET 3 s / 1 s: 0.78 and
    0.72 to 0.69 and 0.63).
    """
    order = np.argsort(starts, kind="stable")
    starts, ends, ranks = starts[order], ends[order], ranks[order]
    best = int(np.argmax(ranks))
    height = float(ranks[best]) - background
    bar = background + EXTENT_FRACTION * height
    lo = hi = best
    while lo > 0 and ranks[lo - 1] >= bar:
        lo -= 1
    while hi < len(ranks) - 1 and ranks[hi + 1] >= bar:
        hi += 1
    latest_start, earliest_end = float(starts[lo: hi + 1].max()), float(ends[lo: hi + 1].min())
    if latest_start < earliest_end:  # they share an instant: the windows sharing it with them, down to halfway
        lo, hi = _shared(starts, ends, ranks, best=best, low=background + CORE_FRACTION * height)
        latest_start, earliest_end = float(starts[lo: hi + 1].max()), float(ends[lo: hi + 1].min())
    onset, offset = min(latest_start, earliest_end), max(latest_start, earliest_end)
    peak = _covered_most(starts, ends, ranks - (background + CORE_FRACTION * height))
    if peak is None:
        peak = (latest_start + earliest_end) / 2
    steps = np.diff(starts)
    step = float(steps[steps > 0].min()) if (steps > 0).any() else 0.0
    if offset - onset < step:  # known no finer than the windows' step
        onset, offset = peak - step / 2, peak + step / 2
    return peak, min(onset, peak), max(offset, peak)


def _shared(starts: np.ndarray, ends: np.ndarray, ranks: np.ndarray, *, best: int, low: float) -> tuple[int, int]:
    """The first and last of the windows (sorted by start) grown from ``best``, its better neighbour
    first, through windows scoring at least ``low`` while every one of them still holds one instant."""
    lo = hi = best
    while True:
        shared = [j for j in (lo - 1, hi + 1) if 0 <= j < len(ranks) and ranks[j] >= low
                  and max(float(starts[lo: hi + 1].max()), float(starts[j])) < min(float(ends[lo: hi + 1].min()),
                                                                                   float(ends[j]))]
        if not shared:
            return lo, hi
        j = max(shared, key=lambda k: float(ranks[k]))
        lo, hi = min(lo, j), max(hi, j)


def _covered_most(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray) -> float | None:
    """The middle of where the covering windows weigh most (None if no window weighs anything).

    The total is a step function, constant between consecutive window edges.  The peak is the
    centroid, by time and by height above ``PEAK_SHARE`` of the best, of the unbroken stretch
    of steps standing above that share around the best step: for a sound shorter than the
    windows' step that is the best step and a little of its neighbours (what the parabola
    through them, used before, gave); for a longer one it is the middle of the plateau its
    windows make, not wherever noise put the highest step (on recorded foley the highest step
    of a plateau 8 s long fell 3 s from the take's centre)."""
    if not (weights > 0).any():
        return None
    edges = np.unique(np.r_[starts, ends])
    change = np.zeros(len(edges))
    np.add.at(change, np.searchsorted(edges, starts), weights)
    np.add.at(change, np.searchsorted(edges, ends), -weights)
    total = np.cumsum(change)[:-1]  # over [edges[j], edges[j + 1])
    top = int(np.argmax(total))
    cut = PEAK_SHARE * float(total[top])
    first = last = top
    while first > 0 and total[first - 1] >= cut:
        first -= 1
    while last + 1 < len(total) and total[last + 1] >= cut:
        last += 1
    middles = (edges[:-1] + edges[1:]) / 2
    if first < top < last:  # a plateau: its centroid
        above = (total[first: last + 1] - cut) * np.diff(edges)[first: last + 1]
        return float((above * middles[first: last + 1]).sum() / above.sum())
    if top == 0 or top == len(total) - 1:
        return float(middles[top])
    before, here, after = total[top - 1: top + 2]
    bend = before - 2 * here + after  # < 0: the best step stands above both of its neighbours
    shift = 0.5 * (before - after) / bend if bend < 0 else 0.0
    return float(middles[top] + shift * (middles[top + 1] - middles[top - 1]) / 2)
