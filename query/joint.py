"""Evidence of several embedding sets of one store, combined on the first set's windows.

Two models hear different things (gated log-mel the level and colour of a sound, BirdNET
a trained network's categories), and a store may hold both.  Asked to search with several,
each set scores the query with its own model; each set's cosines are standardised over its
windows (a set's scores have their own spread: LOGMEL's centred cosines and BirdNET's raw
ones are not on one scale); and the sets meet on the windows of the first one, which carry
the moments: each window of the first set takes, from every other set, the best of that
set's windows centred within it (a 3 s window holding the sound inside an 8 s one that
holds it too).  The joint score of a window is the mean of its sets' standardised scores,
over the sets that indexed its file.

Whether this helps is measured, not assumed: ``bench/detect_bench.py --joint`` prints
retrieval with each set alone and with both.
"""

from __future__ import annotations

import numpy as np

from audioscan.query.rescore import Scored
from audioscan.query.search import SetIndex

# Files longer than this many seconds would collide in the (file, time) key; no recording is.
_FILE_SPAN = 1e8


def standardised(scores: np.ndarray) -> np.ndarray:
    """Scores as standard deviations from their mean (0 for a set whose scores are all equal)."""
    spread = float(scores.std())
    return (scores - scores.mean()) / spread if spread > 0 else np.zeros_like(scores)


def onto(first: SetIndex | Scored, other: SetIndex | Scored, scores: np.ndarray) -> np.ndarray:
    """For each window of ``first``, the best of ``scores`` (one per window of ``other``) among
    ``other``'s windows centred within it; NaN where there is none (a file ``other`` lacks)."""
    centres = (other.starts + other.ends) / 2
    keys = other.media_ids * _FILE_SPAN + centres
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    lo = np.searchsorted(keys, first.media_ids * _FILE_SPAN + first.starts, side="left")
    hi = np.searchsorted(keys, first.media_ids * _FILE_SPAN + first.ends, side="right")
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
    """Per window of ``indexes[0]``: the mean over sets of their standardised cosines with their
    query (see the module docstring)."""
    first = indexes[0]
    columns = [standardised(first.exact_scores(queries[0]).astype(np.float64))]
    for index, query in zip(indexes[1:], queries[1:]):
        columns.append(onto(first, index, standardised(index.exact_scores(query).astype(np.float64))))
    return np.nanmean(np.stack(columns), axis=0).astype(np.float32)


def joint_scored(scored: list[Scored]) -> Scored:
    """Several detectors' scores (one per set, trained on the same labels) on the first one's
    windows: the probability is the mean of the detectors' probabilities there, and the
    decision value, which ranks, the mean of their standardised decision values."""
    first = scored[0]
    probabilities = [first.scores.astype(np.float64)]
    decisions = [standardised(first.decisions.astype(np.float64))]
    for other in scored[1:]:
        probabilities.append(onto(first, other, other.scores.astype(np.float64)))
        decisions.append(onto(first, other, standardised(other.decisions.astype(np.float64))))
    return Scored(first.ids, first.media_ids, first.starts, first.ends,
                  np.nanmean(np.stack(probabilities), axis=0), np.nanmean(np.stack(decisions), axis=0))
