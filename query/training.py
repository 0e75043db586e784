"""Turning labels into a training set, from stored vectors only.

The original scan's rules, applied to time ranges and markers:

* positives: windows overlapping a positive range, and windows starting within
  ``tolerance`` (12 s) of a positive marker;
* negatives: windows overlapping a negative range or starting within ``tolerance`` of
  a negative marker (hard negatives, e.g. rejected detections), minus any positive;
* automatic negatives: in each labelled file, windows starting every 4 s that are
  farther than ``neg_margin`` (120 s) from every label of this name, subsampled to 3x
  the positives with a fixed seed.

Features are z-scored per media file by default, with the mean and standard
deviation the build stored for each file and set (``--normalize file|global|none``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.store.store import Store
from audioscan.query.errors import QueryError
from audioscan.query.labels import Label, list_labels

TOLERANCE = 12.0
NEG_MARGIN = 120.0
AUTO_NEGATIVE_EVERY = 4.0
NEGATIVES_PER_POSITIVE = 3
SEED = 42
STD_FLOOR = 1e-6
NORMALIZATIONS = ("file", "global", "none")


@dataclass
class TrainingSet:
    features: np.ndarray
    y: np.ndarray
    window_ids: np.ndarray
    positives: int
    hard_negatives: int
    auto_negatives: int


@dataclass
class Normalizer:
    """Per-file (or one global) mean and std, applied row by row by media id."""

    mode: str
    media_ids: np.ndarray  # sorted
    means: np.ndarray
    stds: np.ndarray

    @classmethod
    def load(cls, snapshot: Snapshot, mode: str) -> "Normalizer":
        """From the per-file statistics the snapshot carries (take it with ``stats=True``)."""
        if mode not in NORMALIZATIONS:
            raise QueryError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}")
        stats = snapshot.stats
        ids = stats.media_ids
        means = stats.means.astype(np.float64)
        stds = stats.stds.astype(np.float64)
        if mode == "global" and len(ids):
            counts = stats.n_windows.astype(np.float64)[:, None]
            mean = (means * counts).sum(0) / counts.sum()
            var = ((stds ** 2 + means ** 2) * counts).sum(0) / counts.sum() - mean ** 2
            means = np.broadcast_to(mean, means.shape)
            stds = np.broadcast_to(np.sqrt(np.maximum(var, 0)), stds.shape)
        if mode == "none":
            means, stds = np.zeros_like(means), np.ones_like(stds)
        return cls(mode, ids, means.astype(np.float32), np.maximum(stds, STD_FLOOR).astype(np.float32))

    def rows(self, media_ids: np.ndarray) -> np.ndarray:
        """Row index into ``means``/``stds`` for each media id."""
        return np.searchsorted(self.media_ids, media_ids)

    def apply(self, vectors: np.ndarray, media_ids: np.ndarray) -> np.ndarray:
        at = self.rows(media_ids)
        return ((vectors - self.means[at]) / self.stds[at]).astype(np.float32, copy=False)


def _near(starts: np.ndarray, ends: np.ndarray, labels: list[Label], tolerance: float) -> np.ndarray:
    """Windows a label claims: overlapping a range, or starting within ``tolerance`` of a marker."""
    hit = np.zeros(len(starts), dtype=bool)
    for item in labels:
        if item.kind == "marker":
            hit |= np.abs(starts - item.start) < tolerance
        else:
            hit |= (starts < item.end) & (ends > item.start)
    return hit


def _every(starts: np.ndarray, step: float) -> np.ndarray:
    """One window per ``step`` seconds (the first starting in each step), whatever the hop."""
    picked = np.zeros(len(starts), dtype=bool)
    order = np.argsort(starts, kind="stable")
    _, first = np.unique(np.floor(starts[order] / step + 1e-9), return_index=True)
    picked[order[first]] = True
    return picked


def _distance(starts: np.ndarray, ends: np.ndarray, labels: list[Label]) -> np.ndarray:
    """Seconds from each window to the nearest label (0 when they overlap)."""
    best = np.full(len(starts), np.inf)
    for item in labels:
        gap = np.maximum(0.0, np.maximum(item.start - ends, starts - item.end))
        best = np.minimum(best, gap if item.kind == "range" else np.abs(starts - item.start))
    return best


def training_set(store: Store, snapshot: Snapshot, label: str, normalize: str = "file",
                 tolerance: float = TOLERANCE, neg_margin: float = NEG_MARGIN) -> TrainingSet:
    """Positives, hard and automatic negatives of ``label`` from one snapshot of a set."""
    info = snapshot.info
    labels = [item for item in list_labels(store, label) if item.media.status == "ok"]
    if not labels:
        raise QueryError(f"there are no labels named '{label}' on indexed files; add some with "
                         "'audioscan labels add FILE START END LABEL'")
    by_media: dict[int, list[Label]] = {}
    for item in labels:
        by_media.setdefault(item.media.id, []).append(item)
    rng = np.random.RandomState(SEED)
    positive, hard, auto = [], [], []
    for media_id, items in by_media.items():
        mine = np.flatnonzero(snapshot.media_ids == media_id)
        starts, ends = snapshot.starts[mine], snapshot.ends[mine]
        pos = _near(starts, ends, [i for i in items if i.positive], tolerance)
        neg = _near(starts, ends, [i for i in items if not i.positive], tolerance) & ~pos
        free = _every(starts, AUTO_NEGATIVE_EVERY) & (_distance(starts, ends, items) > neg_margin) & ~pos & ~neg
        positive.append(mine[pos])
        hard.append(mine[neg])
        auto.append(mine[free])
    positive, hard, auto = (np.concatenate(parts) for parts in (positive, hard, auto))
    keep = min(len(auto), NEGATIVES_PER_POSITIVE * len(positive))
    auto = np.sort(rng.choice(auto, keep, replace=False)) if keep else auto[:0]
    negatives = np.concatenate([hard, auto])
    if not len(positive) or not len(negatives):
        missing = "positive" if not len(positive) else "negative"
        raise QueryError(
            f"'{label}' gives {len(positive)} positive and {len(negatives)} negative windows in set {info.name}; "
            f"a classifier needs both: add {missing} labels (negatives come from --negative labels or from "
            f"stretches more than {neg_margin:g} s away from every label)")
    positions = np.concatenate([positive, negatives])
    y = np.concatenate([np.ones(len(positive), np.int8), np.zeros(len(negatives), np.int8)])
    vectors = snapshot.vectors_at(positions)
    features = Normalizer.load(snapshot, normalize).apply(vectors, snapshot.media_ids[positions])
    return TrainingSet(features, y, snapshot.ids[positions], len(positive), len(hard), len(auto))
