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
from audioscan.query.search import Hit
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


def detections(scored: Scored, paths: dict[int, str], threshold: float = DEFAULT_THRESHOLD) -> list[Hit]:
    """Windows at or above ``threshold``; overlapping or touching ones of a file fuse, keeping the best score."""
    keep = scored.scores >= threshold
    media, starts, ends, scores = scored.media_ids[keep], scored.starts[keep], scored.ends[keep], scored.scores[keep]
    order = np.lexsort((starts, media))
    found: list[Hit] = []
    current = None
    for i in order:
        if current is not None and current[0] == media[i] and starts[i] <= current[2]:
            current[2] = max(current[2], ends[i])
            current[3] = max(current[3], scores[i])
            continue
        if current is not None:
            found.append(Hit(paths[int(current[0])], float(current[1]), float(current[2]), float(current[3])))
        current = [media[i], starts[i], ends[i], scores[i]]
    if current is not None:
        found.append(Hit(paths[int(current[0])], float(current[1]), float(current[2]), float(current[3])))
    return sorted(found, key=lambda hit: -hit.score)
