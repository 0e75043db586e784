"""Evidence of several embedding sets of one store, combined on the first set's windows.

Two models hear different things (gated log-mel the level and colour of a sound, BirdNET
a trained network's categories), and a store may hold both.  Asked to search with several,
each set scores the query with its own model; each set's cosines are standardised over its
windows (a set's scores have their own spread: LOGMEL's centred cosines and BirdNET's raw
ones are not on one scale); and the sets meet on the windows of the first one, which carry
the moments: each window of the first set takes, from every other set, the best of that
set's windows centred within it (a 3 s window holding the sound inside an 8 s one that
holds it too).  The joint score of a window is the mean of its sets' standardised scores,
over the sets that indexed its file, each weighted by how far that set's best window
stands above the rest (its highest standardised score): a set that singles out some
windows for this query says more than one whose scores are a flat spread.

Whether this helps is measured, not assumed: ``bench/detect_bench.py --joint`` prints
retrieval and detection with each set alone and with both.  An unweighted mean did not
help (AP@10 0.739 against BIRDNET's 0.783 alone); the weighted one is what is kept.
"""

from __future__ import annotations

import numpy as np

from audioscan.query.rescore import Scored
from audioscan.query.search import SetIndex

# Files longer than this many seconds (115 days) would collide in the (file, time) key; and a
# million files keep the key's times to a few milliseconds in float64.
_FILE_SPAN = 1e7


def standardised(scores: np.ndarray) -> np.ndarray:
    """Scores as standard deviations from their mean (0 for a set whose scores are all equal)."""
    spread = float(scores.std()) if len(scores) else 0.0
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)


def onto(first: SetIndex | Scored, other: SetIndex | Scored, *, scores: np.ndarray) -> np.ndarray:
    """For each window of ``first``, the best of ``scores`` (one per window of ``other``) among
    ``other``'s windows centred within it; NaN where there is none (a file ``other`` lacks).  Windows
    meet on their channel when both sets hear each channel apart, else on their file (a mix holds
    every channel)."""
    centres = (other.starts + other.ends) / 2
    by_stream = bool(first.channels.any() and other.channels.any())
    first_streams = first.streams if by_stream else first.media_ids
    keys = (other.streams if by_stream else other.media_ids) * _FILE_SPAN + centres
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    lo = np.searchsorted(keys, first_streams * _FILE_SPAN + first.starts, side="left")
    hi = np.searchsorted(keys, first_streams * _FILE_SPAN + first.ends, side="right")
    out = np.full(len(first.starts), np.nan)
    some = hi > lo
    if some.any():
        out[some] = _range_max(scores[order], lo[some], hi[some])
    return out


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``values[lo[i]:hi[i]].max()`` for every i (all ranges non-empty): a sparse table, whose
    level k holds the maximum of each run of 2**k values, answers each range from two runs."""
    levels, length = [values], 1
    while 2 * length <= int((hi - lo).max()):
        below = levels[-1]
        levels.append(np.maximum(below[:-length], below[length:]))
        length *= 2
    level = np.floor(np.log2(hi - lo)).astype(np.int64)
    out = np.empty(len(lo))
    for k in np.unique(level):
        mine = level == k
        table = levels[k]
        out[mine] = np.maximum(table[lo[mine]], table[hi[mine] - (1 << int(k))])
    return out


def joint_scores(indexes: list[SetIndex], queries: list[np.ndarray]) -> np.ndarray:
    """Per window of ``indexes[0]``: the weighted mean over sets of their standardised cosines
    with their query (see the module docstring)."""
    first = indexes[0]
    columns = [standardised(index.exact_scores(query).astype(np.float64)) for index, query in zip(indexes, queries)]
    return _weighted(first, indexes, columns).astype(np.float32)


def joint_scored(scored: list[Scored]) -> Scored:
    """Several detectors' scores (one per set, trained on the same labels) on the first one's
    windows: the probability is the weighted mean of the detectors' probabilities there, and the
    decision value, which ranks, the weighted mean of their standardised decision values (the
    weights as for search: each detector's highest standardised decision value)."""
    first = scored[0]
    decisions = [standardised(found.decisions.astype(np.float64)) for found in scored]
    weights = _weights(decisions)
    probabilities = [first.scores.astype(np.float64)] + [onto(first, other, scores=other.scores.astype(np.float64))
                                                         for other in scored[1:]]
    return Scored(first.ids, first.media_ids, starts=first.starts, ends=first.ends,
                  scores=_mean(np.stack(probabilities), weights),
                  decisions=_weighted(first, scored, decisions, weights), channels=first.channels)


def _weights(columns: list[np.ndarray]) -> np.ndarray:
    """Each set's weight: its highest standardised score (none below a small floor, so a set
    whose scores are all equal still counts a little rather than dividing by zero)."""
    return np.asarray([max(float(column.max()) if len(column) else 0.0, 1e-3) for column in columns])


def _weighted(first, others: list, columns: list[np.ndarray], weights: np.ndarray | None = None) -> np.ndarray:
    """The weighted mean of standardised ``columns`` (one per set) on ``first``'s windows."""
    weights = _weights(columns) if weights is None else weights
    mapped = [columns[0]] + [onto(first, other, scores=column) for other, column in zip(others[1:], columns[1:])]
    return _mean(np.stack(mapped), weights)


def _mean(stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean down the first axis over the values that are not NaN (a set lacking a file)."""
    present = ~np.isnan(stacked)
    weights = weights[:, None] * present
    return (np.where(present, stacked, 0.0) * weights).sum(0) / weights.sum(0)
