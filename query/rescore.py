"""Scoring every stored window with a classifier, segment by segment, and merging detections.

Vectors stream from the memory-mapped segments one at a time, so a store larger than
memory rescores in bounded memory.  For the linear classifier the per-file z-score,
the scaler and the weights fold into one weight vector per file, so each file's
windows cost a single matrix-vector product straight on the stored vectors.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import KW_ONLY, dataclass, fields
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from audioscan.indexer.store.snapshot import STREAM_CHANNELS, Snapshot
from audioscan.models import threads
from audioscan.query.classifier import Classifier
from audioscan.query.moments import Moment
from audioscan.query.runs import Profile, ProfileOf, Sounds
from audioscan.query.training import Normalizer

DEFAULT_THRESHOLD = 0.5
_BLOCK_ROWS = 256


@dataclass(frozen=True)
class Scored:
    """Probabilities of some windows, with the decision values they were calibrated from
    (what ranks them: calibration is flat over stretches, decision values are not)."""

    ids: np.ndarray
    media_ids: np.ndarray
    _: KW_ONLY
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray
    decisions: np.ndarray
    channels: np.ndarray  # 0: the mix; in a split set, each window's channel from 1

    @property
    def streams(self) -> np.ndarray:
        """Each window's stream key (``snapshot.stream_key``): moments are found per stream."""
        return self.media_ids * STREAM_CHANNELS + self.channels


def _linear_decisions(linear: dict[str, Any], normalizer: Normalizer, vectors: np.ndarray,
                      media_ids: np.ndarray, pool: ThreadPoolExecutor, workers: int) -> np.ndarray:
    """A linear detector's decision values (``Classifier.linear``'s numbers), with each file's
    normalisation folded into the weights: one matrix product a block, on every worker."""
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
    share = -(-len(blocks) // workers)
    with _blas().limit(limits=1, user_api="blas"):
        list(pool.map(run, [blocks[i: i + share] for i in range(0, len(blocks), share)]))
    return out


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    return ThreadpoolController()  # inspecting the loaded libraries is slow: once per process


def score_windows(snapshot: Snapshot, classifier: Classifier) -> Iterator[Scored]:
    """Probabilities for every live window of a snapshot (taken with ``stats=True``), one segment at a time."""
    for scored in score_windows_of(snapshot, [classifier]):
        yield scored[0]


def score_windows_of(snapshot: Snapshot, classifiers: Sequence[Classifier]) -> Iterator[list[Scored]]:
    """Each classifier's probabilities for every live window, one segment at a time: a segment's
    vectors are read once for all of them (``rescore --all``)."""
    normalizers = [Normalizer.load(snapshot, classifier.normalize) for classifier in classifiers]
    workers = threads.count()
    with ThreadPoolExecutor(workers) as pool:
        for positions, ids, vectors in snapshot.iter_segments():
            media = snapshot.media_ids[positions]
            out = []
            for classifier, normalizer in zip(classifiers, normalizers):
                if classifier.linear is not None:
                    decisions = _linear_decisions(classifier.linear, normalizer, vectors=vectors, media_ids=media,
                                                  pool=pool, workers=workers)
                else:
                    decisions = np.asarray(classifier.decision(normalizer.apply(vectors, media)), dtype=np.float64)
                out.append(Scored(ids, media, starts=snapshot.starts[positions], ends=snapshot.ends[positions],
                                  scores=classifier.calibration(decisions), decisions=decisions,
                                  channels=snapshot.channels[positions]))
            yield out


def all_scores(snapshot: Snapshot, classifier: Classifier) -> Scored:
    return joined(list(score_windows(snapshot, classifier)))


def joined(parts: list[Scored]) -> Scored:
    """One :class:`Scored` of a run's segments."""
    if not parts:
        empty = np.zeros(0)
        return Scored(empty.astype(np.int64), empty.astype(np.int64), starts=empty, ends=empty, scores=empty,
                      decisions=empty, channels=empty.astype(np.int16))
    return Scored(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Scored)})


def detections(scored: Scored, paths: dict[int, str], *, threshold: float = DEFAULT_THRESHOLD) -> list[Moment]:
    """Moments where the detector fires, best first (by decision value): one per sound whose best
    window scores at or above ``threshold``, its score that window's probability.

    Sounds are found on every window of their file (those under the threshold too: they show
    where one sound ends and the next begins) by ``audioscan.query.runs``: one event is one
    detection, two are two when the windows can tell them apart, and at ``--threshold 0`` the
    library becomes a ranked list of candidate moments, one per sound, that never overlap.
    Each is placed (peak, onset, offset) from its windows' decision values.
    """
    keep = np.flatnonzero(scored.scores >= threshold)
    streams = scored.streams
    order = keep[np.lexsort((scored.starts[keep], streams[keep], -scored.decisions[keep]))]
    sounds = Sounds(paths, _profiles(scored), spread=float(scored.decisions.std()) if len(keep) else 0.0, decision=True)
    found = (sounds.offer(stream, start) for stream, start in zip(streams[order].tolist(),
                                                                 scored.starts[order].tolist()))
    return [moment for moment in found if moment is not None]


def _profiles(scored: Scored) -> ProfileOf:
    """Each stream's profile: its scored windows by start, ranked by decision value."""
    streams = scored.streams
    order = np.lexsort((scored.starts, streams))
    grouped = streams[order]

    def profile(stream: int) -> Profile:
        mine = order[np.searchsorted(grouped, stream, "left"): np.searchsorted(grouped, stream, "right")]
        return Profile(scored.starts[mine], scored.ends[mine], ranks=scored.decisions[mine], scores=scored.scores[mine])

    return profile


def per_window(scored: Scored, paths: dict[int, str]) -> list[Moment]:
    """Every window's score, by file, channel and time (for people who do their own analysis)."""
    order = np.lexsort((scored.starts, scored.channels, scored.media_ids))
    return [Moment(paths[int(scored.media_ids[i])], float(scored.starts[i]), end=float(scored.ends[i]),
                   score=float(scored.scores[i]), decision=float(scored.decisions[i]), channel=int(scored.channels[i]))
            for i in order]
