"""Many detectors over one set's windows in one run: each window's probability by each detector,
every detector at its own threshold - the one it was trained to report (``train --threshold``),
shown by ``detectors`` - so a window is kept when any detector fires on it.

The windows are taken once (one snapshot, one filter), each segment's vectors are read once, and
every detector scores each window once: five detectors cost five products over one read, not five
rescores, each reading every vector and forming moments.  The table is per window, as a multi-label classifier's
output is: a column per detector, or with ``top`` each window's best labels above their thresholds.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Sequence

import numpy as np

from audioscan.indexer.store.snapshot import Snapshot
from audioscan.query.classifier import Classifier
from audioscan.query.rescore import DEFAULT_THRESHOLD, joined, score_windows_of


@dataclass(frozen=True)
class Column:
    """A detector's column: its name, the label it finds and the threshold it fires at."""

    name: str
    label: str
    threshold: float


@dataclass(frozen=True)
class ManyScores:
    """Every scored window (``paths``, ``starts``, ``ends``, ``channels``) and its probability by each column."""

    columns: list[Column]
    paths: list[str]
    _: KW_ONLY
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray  # [windows, columns]
    channels: np.ndarray  # 0: the mix; from 1, a split set's channel

    def fired(self) -> np.ndarray:
        """The rows where at least one detector reaches its threshold, in file and time order."""
        thresholds = np.asarray([column.threshold for column in self.columns])
        keep = np.flatnonzero((self.scores >= thresholds).any(axis=1))
        return keep[np.lexsort((self.starts[keep], self.channels[keep],
                                np.asarray(self.paths, dtype=object)[keep].astype(str)))]

    def top_labels(self, row: int, count: int) -> list[tuple[str, float]]:
        """The row's ``count`` best labels among the detectors that fire on it, best first."""
        fired = [(column.label, float(score)) for column, score in zip(self.columns, self.scores[row])
                 if score >= column.threshold]
        return sorted(fired, key=lambda pair: -pair[1])[:count]


def own_threshold(classifier: Classifier) -> float:
    found = classifier.metrics.get("threshold")
    return float(found) if isinstance(found, (int, float)) else DEFAULT_THRESHOLD


def score_many(snapshot: Snapshot, classifiers: Sequence[Classifier]) -> ManyScores:
    """Each classifier's probability for every window of ``snapshot`` (taken with ``stats=True``)."""
    parts = list(score_windows_of(snapshot, classifiers))
    scored = [joined([segment[k] for segment in parts]) for k in range(len(classifiers))]
    first = scored[0]
    paths = {mid: media.path for mid, media in snapshot.media.items()}
    return ManyScores(columns=[Column(c.name, c.label, own_threshold(c)) for c in classifiers],
                      paths=[paths[int(m)] for m in first.media_ids], starts=first.starts, ends=first.ends,
                      scores=np.column_stack([found.scores for found in scored]) if scored else np.zeros((0, 0)),
                      channels=first.channels)
