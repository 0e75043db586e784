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
from pathlib import Path
from typing import Iterator

import numpy as np
from threadpoolctl import ThreadpoolController

from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.segments import read_segment
from audioscan.indexer.store.store import Store
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


def score_windows(store: Store, info: SetInfo, classifier: Classifier) -> Iterator[Scored]:
    """Probabilities for every live window of the set, one segment at a time."""
    normalizer = Normalizer.load(store, info, classifier.normalize)
    with store.connect() as con:
        rows = con.execute("SELECT segment_id, id, media_id, start_s, end_s FROM windows WHERE set_id = ? AND alive "
                           "ORDER BY segment_id, id", [info.id]).fetchnumpy()
        files = dict(con.execute("SELECT id, file FROM segments WHERE set_id = ?", [info.id]).fetchall())
    segment_ids = rows["segment_id"]
    bounds = np.flatnonzero(np.diff(segment_ids)) + 1
    with ThreadPoolExecutor(_WORKERS) as pool:
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(segment_ids)]):
            if a < b:
                path = store.sets_dir / info.name / files[int(segment_ids[a])]
                yield _score_segment(path, classifier, normalizer, rows, slice(a, b), pool)


def _score_segment(path: Path, classifier: Classifier, normalizer: Normalizer, rows: dict, span: slice,
                   pool: ThreadPoolExecutor) -> Scored:
    """Scores of the windows ``rows[span]``, which all live in the segment at ``path``."""
    a, b = span.start, span.stop
    ids, vectors = read_segment(path)
    wanted = rows["id"][a:b]
    if len(ids) != len(wanted) or not np.array_equal(ids, wanted):
        order = np.argsort(ids, kind="stable")
        vectors = vectors[order[np.searchsorted(ids, wanted, sorter=order)]]
    media = rows["media_id"][a:b]
    if classifier.linear is not None:
        scores = _linear_scores(classifier, normalizer, vectors, media, pool)
    else:
        scores = classifier.probability(normalizer.apply(vectors, media))
    return Scored(wanted, media, rows["start_s"][a:b], rows["end_s"][a:b], scores)


def all_scores(store: Store, info: SetInfo, classifier: Classifier) -> Scored:
    parts = list(score_windows(store, info, classifier))
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
