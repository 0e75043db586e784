"""From scored windows to moments: runs of overlapping windows, split at their valleys,
each placed where its sound is.

Search and rescore both end here.  The windows that pass the cut (search: they score
above the (k+1)-th best moment; rescore: the threshold) are joined into runs: a file's
windows that overlap or touch.  A run longer than ``max_length`` is split at its valleys,
judged on the profile of every window of the file under it (those under the cut too, so
a cut that happens to fall inside one steady sound makes no valley), so one moment holds
one sound and two sounds ten seconds apart are two moments; a run with no valley is one
long sound and stays whole.  A moment then keeps only the windows that hold its sound,
so it spans at most two windows plus the sound (a cut far under a short sound's best
would otherwise stretch it over the whole file).

Every window of a moment covers a stretch several times longer than a short sound, but
the windows that score near the moment's best say where it is: :func:`locate` reads the
``peak`` and the sound's ``onset`` and ``offset`` from where they start and end.

Windows are ranked by ``ranks`` (cosine similarity for search, the classifier's decision
value for detections - a calibrated probability is flat over whole stretches and would
tie) and shown with ``scores`` (the cosine, or the probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from audioscan.query.moments import Moment

# A window counts as evidence of where the sound is when it scores at least this far from the
# level around the moment to its best.  That level is a low percentile of the file's windows
# overlapping the moment: not the lowest (often a dip right after the sound, far under the
# room's level), not the median (most windows over a short sound hold it).
CORE_FRACTION = 0.5
BACKGROUND_PERCENTILE = 25
# A window weighs in the peak by how far it scores above this share of the way from that level
# to the best: windows barely over the level are noise, and one of them tipped a tie of two steps.
EVIDENCE_FLOOR = 0.1
# A dip splits a run in two when it lies below the best windows on both of its sides by more
# than this share of the lower side's height above the cut (the lowest window given): so the
# wiggles of one steady sound are not valleys, and a dip between two faint sounds is.
VALLEY_DEPTH = 0.25


@dataclass
class Windows:
    """Windows of one set with what ranks them and what is shown for them."""

    media_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    ranks: np.ndarray
    scores: np.ndarray

    def take(self, keep: np.ndarray) -> "Windows":
        return Windows(self.media_ids[keep], self.starts[keep], self.ends[keep], self.ranks[keep], self.scores[keep])


# Every window of a file overlapping [start, end), sorted by start: (starts, ends, ranks).
ProfileOf = Callable[[int, float, float], tuple[np.ndarray, np.ndarray, np.ndarray]]


def moments(windows: Windows, paths: dict[int, str], max_length: float | None, profile_of: ProfileOf,
            decision: bool = False) -> list[Moment]:
    """The moments of the windows that passed the cut, best first (``decision``: ranks are
    decision values to carry)."""
    order = np.lexsort((windows.starts, windows.media_ids))
    w = windows.take(order)
    found: list[Moment] = []
    if not len(order):
        return found
    lowest = float(w.ranks.min())
    # A new run starts at a new file or where a window begins after everything before it ended.
    breaks = np.flatnonzero((w.media_ids[1:] != w.media_ids[:-1])
                            | (w.starts[1:] > _running_end(w.media_ids, w.ends)[:-1])) + 1
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(order)]):
        media = int(w.media_ids[a])
        run = w.take(np.arange(a, b))
        around = profile_of(media, float(run.starts[0]), float(run.ends.max()))
        starts, ends, ranks = around
        for begin, end, mine, (after, before) in _split(run, around, max_length, lowest):
            piece = run.take(mine)
            # Placed on every window of the file overlapping the piece short of the valleys around
            # it: a cut falling inside one sound leaves some of its windows out of the piece, not
            # out of the evidence.
            near = (starts < end) & (ends > begin)
            evidence = near & (starts > after) & (starts < before)
            background = float(np.percentile(ranks[near], BACKGROUND_PERCENTILE))
            peak, onset, offset = locate(starts[evidence], ends[evidence], ranks[evidence], background)
            if max_length is not None:  # a moment of the size of its sound: the windows that hold it
                holding = (piece.starts < offset) & (piece.ends > onset)
                if holding.any():
                    begin = max(begin, float(piece.starts[holding].min()))
                    end = min(end, float(piece.ends[holding].max()))
            peak, onset, offset = (float(np.clip(x, begin, end)) for x in (peak, onset, offset))
            best = float(piece.ranks.max())
            found.append(Moment(paths[media], begin, end, float(piece.scores.max()), peak=peak, onset=onset,
                                offset=offset, decision=best if decision else None))
    return sorted(found, key=lambda hit: -(hit.score if hit.decision is None else hit.decision))


def _split(run: Windows, around: tuple[np.ndarray, np.ndarray, np.ndarray], max_length: float | None,
           lowest: float) -> list[tuple[float, float, np.ndarray, tuple[float, float]]]:
    """``(begin, end, which of the run's windows, (after, before))`` of each piece of a run, where
    its evidence lies: the file's windows starting between the valley windows around it.

    The run is split on the profile of its file's windows from its first start to its last
    (``around``); neighbouring pieces meet at the middle of the valley window between them,
    so the moments of one run never overlap."""
    span = (float(run.starts[0]), float(run.ends.max()))
    if max_length is None or span[1] - span[0] <= max_length:
        return [(*span, np.arange(len(run.starts)), (-np.inf, np.inf))]
    starts, ends, ranks = around
    inner = np.flatnonzero((starts >= run.starts[0]) & (starts <= run.starts[-1]))
    pieces = _pieces(starts[inner], ends[inner], ranks[inner], max_length, lowest)
    out = []
    for k, (lo, hi) in enumerate(pieces):
        first, last = starts[inner[lo]], starts[inner[hi - 1]]
        mine = np.flatnonzero((run.starts >= first) & (run.starts <= last))
        if not len(mine):
            continue  # a stretch of windows under the cut between two valleys
        begin, end = float(run.starts[mine].min()), float(run.ends[mine].max())
        after, before = -np.inf, np.inf
        if k:
            valley = inner[pieces[k - 1][1]]
            begin, after = max(begin, float(starts[valley] + ends[valley]) / 2), float(starts[valley])
        if k < len(pieces) - 1:
            valley = inner[hi]
            end, before = min(end, float(starts[valley] + ends[valley]) / 2), float(starts[valley])
        out.append((begin, end, mine, (after, before)))
    return out


def locate(starts: np.ndarray, ends: np.ndarray, ranks: np.ndarray, background: float) -> tuple[float, float, float]:
    """Peak, onset and offset of the sound a moment's windows point to.

    The peak is the instant the most evidence covers: each window counts, for every instant it
    holds, by how far it scores above ``background`` (the level around the moment) less
    ``EVIDENCE_FLOOR`` of the way to the best, so the score profile is matched against the
    shape of a window (:func:`_covered_most`).  Windows
    beside a sound that score nearly as well as those holding it (they hold something like it)
    cover its neighbourhood but not the sound itself; the windows holding it all cover it.

    The extent comes from the core: the unbroken stretch of windows around the best that score
    at least ``CORE_FRACTION`` of the way from ``background`` to the best.  If only the windows
    holding the whole sound score that well, they all share the sound: it runs from the core's
    latest start to its earliest end.  If windows holding part of it score as well (features
    that keep a sound's loudest frames do), the core runs from a window ending at the onset to
    one starting at the offset: the sound lies between its earliest end and its latest start.
    Either way the sound lies between those two times (never narrower than the windows' step,
    the finest the cut can tell, and always holding the peak).
    """
    order = np.argsort(starts, kind="stable")
    starts, ends, ranks = starts[order], ends[order], ranks[order]
    best = int(np.argmax(ranks))
    bar = background + CORE_FRACTION * (float(ranks[best]) - background)
    lo = hi = best
    while lo > 0 and ranks[lo - 1] >= bar:
        lo -= 1
    while hi < len(ranks) - 1 and ranks[hi + 1] >= bar:
        hi += 1
    latest_start, earliest_end = float(starts[lo: hi + 1].max()), float(ends[lo: hi + 1].min())
    onset, offset = min(latest_start, earliest_end), max(latest_start, earliest_end)
    floor = background + EVIDENCE_FLOOR * (float(ranks[best]) - background)
    peak = _covered_most(starts, ends, np.clip(ranks - floor, 0.0, None))
    if peak is None:
        peak = (latest_start + earliest_end) / 2
    steps = np.diff(starts)
    step = float(steps[steps > 0].min()) if (steps > 0).any() else 0.0
    if offset - onset < step:  # known no finer than the windows' step
        onset, offset = peak - step / 2, peak + step / 2
    return peak, min(onset, peak), max(offset, peak)


def _covered_most(starts: np.ndarray, ends: np.ndarray, weights: np.ndarray) -> float | None:
    """The instant whose covering windows weigh most (None if no window weighs anything).

    The total is a step function, constant between consecutive window edges; its best step is
    refined by the parabola through it and its neighbours (the usual sub-sample peak), and a run
    of equal best steps gives its middle.  Measured on ``bench/detect_bench.py``'s two
    libraries (148 found moments): the peak's error against the sound's centre went from 0.33 /
    1.89 s (median / 90th percentile; the middle of the core, as before) to 0.32 / 1.33 s."""
    if not (weights > 0).any():
        return None
    edges = np.unique(np.r_[starts, ends])
    change = np.zeros(len(edges))
    np.add.at(change, np.searchsorted(edges, starts), weights)
    np.add.at(change, np.searchsorted(edges, ends), -weights)
    total = np.cumsum(change)[:-1]  # over [edges[j], edges[j + 1])
    top = float(total.max())
    tied = total >= top - 1e-12 * max(top, 1.0)
    first = last = int(np.argmax(tied))
    while last + 1 < len(total) and tied[last + 1]:
        last += 1
    middles = (edges[:-1] + edges[1:]) / 2
    if first != last or first == 0 or last == len(total) - 1:
        return float(edges[first] + edges[last + 1]) / 2
    before, here, after = total[first - 1: first + 2]
    bend = before - 2 * here + after  # < 0: the best step stands above both of its neighbours
    shift = 0.5 * (before - after) / bend
    return float(middles[first] + shift * (middles[first + 1] - middles[first - 1]) / 2)


def _running_end(media: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each window (sorted by file, start), the latest end of its file's windows so far."""
    out = np.empty_like(ends)
    cuts = np.flatnonzero(media[1:] != media[:-1]) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(media)]):
        out[a:b] = np.maximum.accumulate(ends[a:b])
    return out


def _pieces(starts: np.ndarray, ends: np.ndarray, ranks: np.ndarray, max_length: float,
            lowest: float) -> list[tuple[int, int]]:
    """Split a file's windows at their deepest valleys while a piece spans more than ``max_length``;
    each valley window is left out of both pieces.

    A piece with no valley - one hump, or a plateau - is one sound however long it is, so it
    is not cut into fragments that would each take a place among the results."""
    out, todo = [], [(0, len(starts))]
    while todo:
        lo, hi = todo.pop()
        cut = _valley(ranks[lo:hi], lowest) if hi - lo > 2 and ends[lo:hi].max() - starts[lo] > max_length else None
        if cut is None:
            out.append((lo, hi))
        else:
            todo += [(lo, lo + cut), (lo + cut + 1, hi)]
    return sorted(out)


def _valley(ranks: np.ndarray, lowest: float) -> int | None:
    """The interior window lying deepest below the best windows on both sides of it, if it is a
    valley: more than ``VALLEY_DEPTH`` of the lower side's height above ``lowest`` below it
    (else it is a wiggle of one sound)."""
    before = np.maximum.accumulate(ranks)[:-2]  # the best up to each interior window
    after = np.maximum.accumulate(ranks[::-1])[::-1][2:]  # and from it on
    sides = np.minimum(before, after)
    depth = sides - ranks[1:-1]
    depth[depth <= VALLEY_DEPTH * (sides - lowest)] = -np.inf
    deepest = int(np.argmax(depth))
    return deepest + 1 if np.isfinite(depth[deepest]) else None
