"""A trained detector of a library: rescoring, per-window scores and suggestions, from notebooks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from audioscan.api.results import Results, placed
from audioscan.models.base import LoadOptions
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.query import classifier as classifiers
from audioscan.query.errors import QueryError
from audioscan.query.filters import MomentFilter, restrict
from audioscan.query.joint import joint_scored
from audioscan.query.quality import threshold_for_precision
from audioscan.query.moments import Moment
from audioscan.query.refine import ScoreOf
from audioscan.query.refine import refine as refine_moments
from audioscan.query.rescore import DEFAULT_THRESHOLD, Scored, all_scores, detections, per_window
from audioscan.query.training import Normalizer
from audioscan.query.suggest import suggest

if TYPE_CHECKING:
    from audioscan.api.library import Library


@dataclass
class Detector:
    """A trained detector of a library: a calibrated classifier of one label over one embedding set,
    ready to score every stored window."""

    library: "Library"
    classifier: classifiers.Classifier
    info: SetInfo

    @property
    def name(self) -> str:
        return self.classifier.name

    @property
    def version(self) -> int:
        return self.classifier.version

    @property
    def metrics(self) -> dict:
        return self.classifier.metrics

    def summary(self) -> dict:
        """What ``train --format json`` prints: the version, its set and its cross-validated figures."""
        m = self.metrics
        keys = ("positives", "negatives", "hard_negatives", "auto_negatives", "library_negatives",
                "positive_regions", "folds", "grouping", "calibration", "cv_ap", "cv_roc_auc", "threshold",
                "cv_precision", "cv_recall", "thresholds", "base_rate", "reliable", "warnings", "seconds")
        return {"name": self.name, "label": self.classifier.label, "model": self.info.model,
                "classifier": self.classifier.kind, "version": self.version, "set": self.info.name,
                **{key: m.get(key) for key in keys}}

    def threshold_for(self, precision: float) -> float:
        """The lowest threshold whose cross-validated precision reaches ``precision``."""
        found = threshold_for_precision(self.metrics, precision)
        if found is None:
            raise QueryError(f"{self.name} v{self.version} never reached precision {precision:g} in "
                             "cross-validation; label more examples (see 'audioscan suggest') or give `threshold`")
        return found

    def _scores(self, where: MomentFilter | None = None) -> tuple[Scored, Snapshot]:
        """The windows ``where`` keeps (every live one without it), scored: a filter picks the windows
        before any vector is read (``query.filters``)."""
        with self.library._reader() as store:
            snapshot = restrict(store.snapshot(self.info, stats=True), where)
        return all_scores(snapshot, self.classifier), snapshot

    def scores(self, where: MomentFilter | None = None) -> Scored:
        """The probability of every live window of the set (ids, media ids, starts, ends, scores), or of
        the windows ``where`` keeps."""
        return self._scores(where)[0]

    def rescore(self, threshold: float = DEFAULT_THRESHOLD, *, top: int | None = None,
                precision: float | None = None, refine: bool = False,
                device: str = "auto", where: MomentFilter | None = None) -> Results:
        """Detections at or above ``threshold`` (or the threshold reaching ``precision``), best first
        by decision value (the ``top`` best when given), one per sound (``audioscan.query.runs``).
        ``refine`` places each
        detection's sound from its span embedded again at a finer hop, with the model on
        ``device`` (``audioscan.query.refine``).  ``where`` scores only the windows it keeps."""
        if precision is not None:
            threshold = self.threshold_for(precision)
        scored, snapshot = self._scores(where)
        return _detected(scored, snapshot, placer=self, threshold=threshold, top=top, refine=refine, device=device)

    def _fine_scorer(self, snapshot: Snapshot) -> ScoreOf:
        """Decision values of vectors embedded anew from a moment's file, normalised as its windows are."""
        normalizer = Normalizer.load(snapshot, self.classifier.normalize)
        media_of = {m.path: mid for mid, m in snapshot.media.items()}

        def score(vectors: np.ndarray, moment: Moment) -> np.ndarray:
            media = np.full(len(vectors), media_of[moment.path])
            return self.classifier.decision(normalizer.apply(vectors, media))

        return score

    def windows(self, where: MomentFilter | None = None) -> Results:
        """Every window's probability (of the windows ``where`` keeps), by file and time."""
        scored, snapshot = self._scores(where)
        return placed(per_window(scored, {mid: m.path for mid, m in snapshot.media.items()}), snapshot.media.values())

    def suggest(self, count: int = 20, where: MomentFilter | None = None) -> Results:
        """Unlabelled moments the detector is least sure about (among those ``where`` keeps): label these next."""
        scored, snapshot = self._scores(where)
        return _suggested(self, scored, snapshot, count)


class JointDetector:
    """Detectors of one label trained in different sets of the store, their evidence combined on
    the first one's windows (``audioscan.query.joint``): the probability shown is the mean of
    theirs, and detections are ranked by the mean of their standardised decision values."""

    def __init__(self, detectors: list[Detector]) -> None:
        labels = {d.classifier.label for d in detectors}
        if len(labels) > 1:
            raise QueryError("detectors to combine must be trained on the same label; these are trained on "
                             + ", ".join(sorted(labels)))
        if len({d.info.id for d in detectors}) < len(detectors):
            raise QueryError("detectors to combine must each be trained in a different embedding set; "
                             "train the label with another `model`")
        self.detectors = detectors
        self.classifier = detectors[0].classifier  # the label, for the moments' rows

    def _scores(self, where: MomentFilter | None = None) -> tuple[Scored, Snapshot]:
        scored = [detector._scores(where) for detector in self.detectors]
        return joint_scored([found for found, _ in scored]), scored[0][1]

    def rescore(self, threshold: float = DEFAULT_THRESHOLD, *, top: int | None = None,
                precision: float | None = None, refine: bool = False,
                device: str = "auto", where: MomentFilter | None = None) -> Results:
        """As :meth:`Detector.rescore`; ``refine`` places each detection with the first set's model."""
        if precision is not None:
            raise QueryError("`precision` reads one detector's cross-validation, which combined detectors do not "
                             "have; give `threshold`")
        scored, snapshot = self._scores(where)
        return _detected(scored, snapshot, placer=self.detectors[0], threshold=threshold, top=top, refine=refine,
                         device=device)

    def windows(self, where: MomentFilter | None = None) -> Results:
        """Every window of the first set (that ``where`` keeps) with its combined probability, by file and time."""
        scored, snapshot = self._scores(where)
        return placed(per_window(scored, {mid: m.path for mid, m in snapshot.media.items()}), snapshot.media.values())

    def suggest(self, count: int = 20, where: MomentFilter | None = None) -> Results:
        """As :meth:`Detector.suggest`, from the combined evidence: the moments the detectors
        together are least sure about."""
        scored, snapshot = self._scores(where)
        return _suggested(self.detectors[0], scored, snapshot, count)


def _suggested(detector: Detector, scored: Scored, snapshot: Snapshot, count: int) -> Results:
    """The ``count`` unlabelled moments nearest the decision boundary of ``scored``."""
    with detector.library._reader() as store:
        labels = store.labels(detector.classifier.label)
    return placed(suggest(scored, labels, paths={mid: m.path for mid, m in snapshot.media.items()}, count=count),
                  snapshot.media.values())


def _detected(scored: Scored, snapshot: Snapshot, placer: Detector, threshold: float, top: int | None,
              refine: bool, device: str) -> Results:
    """The detections of ``scored`` as rescore returns them: the ``top`` best, refined with ``placer``'s model."""
    found = detections(scored, {mid: m.path for mid, m in snapshot.media.items()}, threshold=threshold)
    found = found[:top] if top else found
    if refine:
        found = refine_moments(found, placer.info, score=placer._fine_scorer(snapshot), load=LoadOptions(device=device))
    return placed(found, snapshot.media.values())
