"""Turning labels into a training set, from stored vectors only.

The original scan's rules, applied to time ranges and markers:

* positives: windows overlapping a positive range, and windows starting within
  ``tolerance`` (12 s) of a positive marker;
* negatives: windows overlapping a negative range or starting within ``tolerance`` of
  a negative marker (hard negatives, e.g. rejected detections), minus any positive;
* automatic negatives: in each labelled file, windows starting every 4 s that are
  farther than ``neg_margin`` (120 s) from every label of this name.

Two additions make detectors tell the truth:

* the rest of the library is the background too: one window per 4 s of every other
  indexed file of the set (``--negatives``; at most ``MAX_NEGATIVES`` in all, seeded, spread
  over files).  A detector from three takes tells its sound from what the library holds
  only if it sees what the library holds: against 3x the positives drawn at random (81
  windows) it learnt "a sound, not the room" and fired on every other sound
  (bench/recorded_bench.py, seed 1, 48 3-shot detectors: AP of the held-out takes 0.32 -> 0.51).
  The class-balanced fit keeps the few positives from being outweighed;
* every example carries a weight: the sampled negatives share the unlabelled windows of
  the files they were drawn from (the whole library's, unless ``--negatives labelled``),
  each standing for an equal part, so probabilities keep the odds of the library a
  detector scores - not those of the training set, nor those of the labelled files, which
  hold the sound because someone chose them for it (with them, 0.5 had meant precision
  0.23 on the bench; with the library's odds 0.58); a positive counts by the share of its take it holds
  (a window grazing a take's edge is barely evidence of it: bench/detect_bench.py, 3-shot
  held-out AP 0.62 -> 0.68); and every example carries a group (its file,
  or its stretch of overlapping windows when the positives lie in one file), so
  cross-validation never puts overlapping windows on both sides of a fold.

Features are z-scored with the mean and standard deviation the build stored for
each file and set: per media file (the original scan's rule, the default for neural
models) or over the whole set (the default for LOGMEL) - ``--normalize``.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

import numpy as np

from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.models import registry
from audioscan.models.errors import ModelError
from audioscan.indexer.store.protocols import StoreReader
from audioscan.query.errors import QueryError, quoted
from audioscan.query.labels import Label, marked_channels, same_channel

TOLERANCE = 12.0
NEG_MARGIN = 120.0
AUTO_NEGATIVE_EVERY = 4.0
# The most sampled negatives a detector is fitted on: one window per 4 s of about 22 hours; a
# larger library gives a seeded sample spread over its files, so a fit stays a few seconds.
MAX_NEGATIVES = 20_000
SEED = 42
MIN_HELD = 0.05
STD_FLOOR = 1e-6
NORMALIZATIONS = ("file", "global", "none")
# ``auto``: what the set's model asks for (``ModelSpec.normalize``): per file for the neural
# models, as the original scan; over the whole set for LOGMEL, whose features carry absolute
# level (bench/detect_bench.py: 3-shot AP 0.815 global against 0.487 per file).
CHOICES = ("auto", *NORMALIZATIONS)
NEGATIVE_SOURCES = ("labelled", "library", "both")


@dataclass(frozen=True)
class TrainingSet:
    features: np.ndarray
    y: np.ndarray
    _: KW_ONLY
    window_ids: np.ndarray
    positives: int
    hard_negatives: int
    auto_negatives: int
    library_negatives: int = 0
    groups: np.ndarray | None = None  # cross-validation groups: no two groups share a window's time
    weights: np.ndarray | None = None  # sample weights restoring the labelled files' base rate
    positive_regions: int = 0  # separate stretches of positive windows
    base_rate: float = 0.0  # positive windows among all windows of the labelled files
    grouping: str = "file"  # file | stretch


@dataclass(frozen=True)
class Normalizer:
    """Per-file (or one global) mean and std, applied row by row by media id."""

    mode: str
    media_ids: np.ndarray  # sorted
    _: KW_ONLY
    means: np.ndarray
    stds: np.ndarray

    @classmethod
    def load(cls, snapshot: Snapshot, mode: str) -> "Normalizer":
        """From the per-file statistics the snapshot carries (take it with ``stats=True``)."""
        if mode not in NORMALIZATIONS:
            raise QueryError(f"`normalize` must be one of {', '.join(NORMALIZATIONS)}", value=mode)
        stats = snapshot.stats
        if stats is None:
            raise ValueError("Normalizer.load needs a snapshot taken with its per-file statistics (stats=True)")
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
        return cls(mode, ids, means=means.astype(np.float32), stds=np.maximum(stds, STD_FLOOR).astype(np.float32))

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


def default_normalization(info: SetInfo) -> str:
    """The z-scoring the set's model asks for (``file`` for a model this version does not know)."""
    try:
        return registry.spec(info.model).normalize
    except ModelError:
        return "file"


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


def training_set(store: StoreReader, snapshot: Snapshot, *, label: str, normalize: str = "file",
                 tolerance: float = TOLERANCE, neg_margin: float = NEG_MARGIN,
                 negatives: str = "both") -> TrainingSet:
    """Positives, hard and automatic negatives of ``label`` from one snapshot of a set."""
    if negatives not in NEGATIVE_SOURCES:
        raise QueryError(f"`negatives` must be one of {', '.join(NEGATIVE_SOURCES)}", value=negatives)
    info = snapshot.info
    labels = [item for item in store.labels(label) if item.media.status == "ok"]
    if not labels:
        raise QueryError(f"there are no labels named {quoted(label)} on indexed files; add some with "
                         "'audioscan labels add FILE START END LABEL'")
    by_media: dict[int, list[Label]] = {}
    for item in labels:
        by_media.setdefault(item.media.id, []).append(item)
    rng = np.random.RandomState(SEED)
    parts: dict[str, list[np.ndarray]] = {"positive": [], "hard": [], "auto": []}
    unlabelled_windows = 0  # windows of labelled files that are neither positive nor hard negative
    for media_id, items in by_media.items():
        on_file = np.flatnonzero(snapshot.media_ids == media_id)
        # Each stream of the file (its mix, or each channel of a split set) by the labels that mark it; a
        # window near a label of another channel is no automatic negative (the sound may reach it too).
        for channel in np.unique(snapshot.channels[on_file]).tolist():
            mine = on_file[snapshot.channels[on_file] == channel]
            heard = [i for i in items if same_channel(i.channel, channel)]
            starts, ends = snapshot.starts[mine], snapshot.ends[mine]
            pos = _near(starts, ends, [i for i in heard if i.positive], tolerance)
            neg = _near(starts, ends, [i for i in heard if not i.positive], tolerance) & ~pos
            free = _every(starts, AUTO_NEGATIVE_EVERY) & (_distance(starts, ends, items) > neg_margin) & ~pos & ~neg
            parts["positive"].append(mine[pos])
            parts["hard"].append(mine[neg])
            parts["auto"].append(mine[free])
            unlabelled_windows += int((~pos & ~neg).sum())
    positive, hard, auto = (np.concatenate(parts[kind]) for kind in ("positive", "hard", "auto"))
    keep = min(len(auto), MAX_NEGATIVES) if negatives != "library" else 0
    auto = np.sort(rng.choice(auto, keep, replace=False)) if keep else auto[:0]
    library = auto[:0]
    drawn_from = unlabelled_windows if negatives != "library" else 0  # what the sampled negatives stand for
    if negatives != "labelled":
        library = _library_negatives(snapshot, set(by_media), MAX_NEGATIVES - len(auto), rng)
        drawn_from += int((~np.isin(snapshot.media_ids, list(by_media))).sum())
    chosen = np.concatenate([auto, library])
    negatives_all = np.concatenate([hard, chosen])
    if not len(positive) or not len(negatives_all):
        missing = "positive" if not len(positive) else "negative"
        raise QueryError(
            f"'{label}' gives {len(positive)} positive and {len(negatives_all)} negative windows in set "
            f"{info.name}; a classifier needs both: add {missing} labels (negatives come from `negative` labels, "
            f"from stretches more than {neg_margin:g} s away from every label, or from other indexed files)")
    positions = np.concatenate([positive, negatives_all])
    y = np.concatenate([np.ones(len(positive), np.int8), np.zeros(len(negatives_all), np.int8)])
    # Each sampled negative stands for an equal share of the unlabelled windows it was drawn from.
    share = max(1.0, drawn_from / len(chosen)) if len(chosen) else 1.0
    weights = np.concatenate([_held(snapshot, positive, labels, tolerance), np.ones(len(hard)),
                              np.full(len(chosen), share)])
    groups, grouping = _groups(snapshot, positions, y)
    vectors = snapshot.vectors_at(positions)
    features = Normalizer.load(snapshot, normalize).apply(vectors, snapshot.media_ids[positions])
    total = len(positive) + len(hard) + unlabelled_windows
    return TrainingSet(features, y, window_ids=snapshot.ids[positions], positives=len(positive),
                       hard_negatives=len(hard), auto_negatives=len(auto), library_negatives=len(library),
                       groups=groups, weights=weights,
                       positive_regions=len(np.unique(_stretches(snapshot, positions[y == 1]))),
                       base_rate=len(positive) / max(total, 1), grouping=grouping)


def _held(snapshot: Snapshot, positive: np.ndarray, labels: list[Label], tolerance: float) -> np.ndarray:
    """Each positive window's weight: the share of its take it holds (the most of any positive
    range it overlaps: a window holding a whole take, or filled by a longer one, counts 1; one
    grazing a take's edge counts little), at least ``MIN_HELD``; 1 for markers."""
    starts, ends, media = snapshot.starts[positive], snapshot.ends[positive], snapshot.media_ids[positive]
    channels = snapshot.channels[positive]
    held = np.zeros(len(positive))
    for item in labels:
        mine = (media == item.media.id) & marked_channels(item.channel, channels)
        if not item.positive or not mine.any():
            continue
        if item.kind == "marker":
            held[mine & (np.abs(starts - item.start) < tolerance)] = 1.0
            continue
        overlap = np.minimum(ends, item.end) - np.maximum(starts, item.start)
        share = overlap / np.maximum(np.minimum(item.end - item.start, ends - starts), 1e-9)
        held = np.where(mine, np.maximum(held, np.clip(share, 0.0, 1.0)), held)
    return np.maximum(held, MIN_HELD)


def _library_negatives(snapshot: Snapshot, labelled: set[int], count: int, rng: np.random.RandomState) -> np.ndarray:
    """``count`` windows (one per 4 s) of files without labels of this name, spread over files, seeded."""
    others = np.flatnonzero(~np.isin(snapshot.media_ids, list(labelled)))
    if not len(others) or count <= 0:
        return others[:0]
    per_file: list[np.ndarray] = []
    for media_id in rng.permutation(np.unique(snapshot.media_ids[others])):
        mine = others[snapshot.media_ids[others] == media_id]
        grid = mine[_every(snapshot.starts[mine], AUTO_NEGATIVE_EVERY)]
        per_file.append(rng.permutation(grid))
    picked: list[int] = []
    depth = 0
    while len(picked) < count and any(depth < len(f) for f in per_file):
        picked += [int(f[depth]) for f in per_file if depth < len(f)][: count - len(picked)]
        depth += 1
    return np.sort(np.asarray(picked, dtype=np.int64))


def _groups(snapshot: Snapshot, positions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
    """Cross-validation groups: files, or stretches of overlapping windows when the positives
    lie in a single file (so no two folds ever hold windows that overlap in time)."""
    media = snapshot.media_ids[positions]
    if len(np.unique(media[y == 1])) >= 2:
        return np.unique(media, return_inverse=True)[1].reshape(-1), "file"
    return _stretches(snapshot, positions), "stretch"


def _stretches(snapshot: Snapshot, positions: np.ndarray) -> np.ndarray:
    """A number per window: windows of one file that overlap (directly or through others) share it."""
    media = snapshot.media_ids[positions]
    stretch = np.zeros(len(positions), dtype=np.int64)
    order = np.lexsort((snapshot.starts[positions], media))
    number, last_media, reach = -1, None, -np.inf
    for i in order:
        start, end = snapshot.starts[positions[i]], snapshot.ends[positions[i]]
        if media[i] != last_media or start >= reach:
            number += 1
            last_media, reach = media[i], end
        reach = max(reach, end)
        stretch[i] = number
    return stretch
