"""Scoring every stored window with a classifier, segment by segment, and merging detections.

Vectors stream from the memory-mapped segments one at a time, so a store larger than
memory rescores in bounded memory.  For the linear classifier the per-file z-score,
the scaler and the weights fold into one weight vector per file, so each file's
windows cost a single matrix-vector product straight on the stored vectors.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np
from threadpoolctl import ThreadpoolController

from audioscan.indexer.store.snapshot import Snapshot
from audioscan.query.classifier import Classifier
from audioscan.query.moments import Moment
from audioscan.query.training import Normalizer

DEFAULT_THRESHOLD = 0.5
_BLOCK_ROWS = 256
_WORKERS = os.cpu_count() or 1


@dataclass
class Scored:
    """Probabilities of some windows of one segment."""

    ids: np.ndarray
    media_ids: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray


def _linear_scores(classifier: Classifier, normalizer: Normalizer, vectors: np.ndarray,
                   media_ids: np.ndarray, pool: ThreadPoolExecutor) -> np.ndarray:
    linear = classifier.linear
    weights = (linear["coef"] / linear["scale"]).astype(np.float64)
    offset = linear["intercept"] - float(weights @ linear["mean"])
    out = np.empty(len(vectors), dtype=np.float64)
    blocks = []
    cuts = np.flatnonzero(np.diff(media_ids)) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(vectors)]):
        row = normalizer.rows(media_ids[a: a + 1])[0]
        per_file = (weights / normalizer.stds[row]).astype(np.float32)
        shift = offset - float(per_file @ normalizer.means[row])
        blocks += [(lo, min(b, lo + _BLOCK_ROWS), per_file, shift) for lo in range(a, b, _BLOCK_ROWS)]

    def run(part: list) -> None:
        for lo, hi, per_file, shift in part:
            out[lo:hi] = vectors[lo:hi] @ per_file + shift

    # Scoring is memory-bound: small blocks stay in cache, and one single-threaded BLAS
    # call per core reads the mapping in parallel (a multi-threaded call per block is slower).
    share = -(-len(blocks) // _WORKERS)
    with _blas().limit(limits=1, user_api="blas"):
        list(pool.map(run, [blocks[i: i + share] for i in range(0, len(blocks), share)]))
    return classifier.calibration(out)


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded libraries is slow: once per process


def score_windows(snapshot: Snapshot, classifier: Classifier) -> Iterator[Scored]:
    """Probabilities for every live window of a snapshot (taken with ``stats=True``), one segment at a time."""
    normalizer = Normalizer.load(snapshot, classifier.normalize)
    with ThreadPoolExecutor(_WORKERS) as pool:
        for positions, ids, vectors in snapshot.iter_segments():
            media = snapshot.media_ids[positions]
            if classifier.linear is not None:
                scores = _linear_scores(classifier, normalizer, vectors, media, pool)
            else:
                scores = classifier.probability(normalizer.apply(vectors, media))
            yield Scored(ids, media, snapshot.starts[positions], snapshot.ends[positions], scores)


def all_scores(snapshot: Snapshot, classifier: Classifier) -> Scored:
    parts = list(score_windows(snapshot, classifier))
    if not parts:
        empty = np.zeros(0)
        return Scored(empty.astype(np.int64), empty.astype(np.int64), empty, empty, empty)
    return Scored(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("ids", "media_ids", "starts",
                                                                              "ends", "scores")))


def detections(scored: Scored, paths: dict[int, str], threshold: float = DEFAULT_THRESHOLD,
               max_length: float | None = None) -> list[Moment]:
    """Moments where the detector fires, best first.

    A detection is a run of a file's windows at or above ``threshold`` that overlap
    or touch; its score is its best window's.  A run longer than ``max_length``
    seconds is split at its lowest window (the valley between two moments, which is
    dropped; the two pieces meet at its middle), again and again until every piece
    fits, so at ``--threshold 0`` the library becomes a ranked list of candidate
    moments, one per local peak, that never overlap.
    """
    keep = scored.scores >= threshold
    media, starts, ends, scores = scored.media_ids[keep], scored.starts[keep], scored.ends[keep], scored.scores[keep]
    order = np.lexsort((starts, media))
    media, starts, ends, scores = media[order], starts[order], ends[order], scores[order]
    found: list[Moment] = []
    if not len(order):
        return found
    # A new run starts at a new file or where a window begins after everything before it ended.
    breaks = np.flatnonzero((media[1:] != media[:-1]) | (starts[1:] > _running_end(media, ends)[:-1])) + 1
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(order)]):
        pieces = _pieces(starts, ends, scores, a, b, max_length)
        # Neighbouring pieces meet at the middle of the valley window between them, so
        # the moments of one run never overlap.
        cuts = [(starts[hi] + ends[hi]) / 2 for _, hi in pieces[:-1]]
        for k, (lo, hi) in enumerate(pieces):
            begin = max(starts[lo:hi].min(), cuts[k - 1]) if k else starts[lo:hi].min()
            end = min(ends[lo:hi].max(), cuts[k]) if k < len(cuts) else ends[lo:hi].max()
            found.append(Moment(paths[int(media[lo])], float(begin), float(end), float(scores[lo:hi].max())))
    return sorted(found, key=lambda hit: -hit.score)


def _running_end(media: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """For each window (sorted by file, start), the latest end of its file's windows so far."""
    out = np.empty_like(ends)
    cuts = np.flatnonzero(media[1:] != media[:-1]) + 1
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(media)]):
        out[a:b] = np.maximum.accumulate(ends[a:b])
    return out


def _pieces(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, a: int, b: int,
            max_length: float | None) -> list[tuple[int, int]]:
    """Split the run ``[a, b)`` at its lowest interior windows until each piece spans ``max_length``."""
    if max_length is None:
        return [(a, b)]
    out, todo = [], [(a, b)]
    while todo:
        lo, hi = todo.pop()
        if hi - lo <= 2 or ends[lo:hi].max() - starts[lo] <= max_length:
            out.append((lo, hi))
            continue
        cut = lo + 1 + int(np.argmin(scores[lo + 1: hi - 1]))
        todo += [(lo, cut), (cut + 1, hi)]
    return sorted(out)


def per_window(scored: Scored, paths: dict[int, str]) -> list[Moment]:
    """Every window's score, by file and time (for people who do their own analysis)."""
    order = np.lexsort((scored.starts, scored.media_ids))
    return [Moment(paths[int(scored.media_ids[i])], float(scored.starts[i]), float(scored.ends[i]),
                float(scored.scores[i])) for i in order]
