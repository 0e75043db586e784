"""Detections over time (``rescore NAME --summary hour|day|site``): counts per period beside the hours
of audio scored in it (``query.summary``); and a review of them by score (``--sample``/``--estimate``,
``query.review``), for notebooks and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from audioscan.query import review
from audioscan.query.errors import QueryError
from audioscan.query.filters import MomentFilter, restrict
from audioscan.query.moments import Moment
from audioscan.query.rescore import DEFAULT_THRESHOLD
from audioscan.query.review import sample_csv
from audioscan.query.summary import PERIODS, PeriodCount, summarise

if TYPE_CHECKING:
    from audioscan.api.detector import Detector, JointDetector

# sample_csv: the sample as the file a person fills in, for front-ends.
__all__ = ["PERIODS", "detections_over_time", "review_estimate", "review_sample", "sample_csv"]


def detections_over_time(detector: "Detector | JointDetector", by: str, *, threshold: float = DEFAULT_THRESHOLD,
                         precision: float | None = None, where: MomentFilter | None = None) -> list[PeriodCount]:
    """The detections ``detector.rescore`` finds (with the same threshold or precision and filter), counted
    per ``by`` (hour, day or site) with the hours of audio scored in each."""
    if by not in PERIODS:
        raise QueryError(f"`summary` {by!r} is none of {', '.join(PERIODS)}")
    found = detector.rescore(threshold, precision=precision, where=where)
    first = getattr(detector, "detectors", [detector])[0]
    with first.library._reader() as store:
        scored = restrict(store.snapshot(first.info), where)  # the windows that were scored: no vector is read
    return summarise(found, scored, by=by)


def _threshold(detector: "Detector | JointDetector", threshold: float, precision: float | None) -> float:
    if precision is None:
        return threshold
    if not hasattr(detector, "threshold_for"):
        raise QueryError("`precision` reads one detector's cross-validation, which combined detectors do not "
                         "have; give `threshold`")
    return detector.threshold_for(precision)


def review_sample(detector: "Detector | JointDetector", size: int, *, threshold: float = DEFAULT_THRESHOLD,
                  precision: float | None = None, where: MomentFilter | None = None,
                  by_score: bool = True) -> list[tuple[review.ScoreBin, Moment]]:
    """``size`` of the detections ``rescore`` finds for a person to judge, spread over the score bins
    (``by_score``) or drawn alike (``query.review``)."""
    threshold = _threshold(detector, threshold, precision)
    return review.review_sample(list(detector.rescore(threshold, where=where)), threshold, size=size,
                                by_score=by_score)


def review_estimate(detector: "Detector | JointDetector", verdicts: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
                    precision: float | None = None, where: MomentFilter | None = None,
                    by_score: bool = True) -> list[review.BinEstimate]:
    """Precision per score bin from a judged sample (``verdicts``, the file :func:`review_sample` gave,
    with yes or no in each verdict), and the detections corrected for it."""
    judged = review.read_verdicts(Path(verdicts))
    threshold = _threshold(detector, threshold, precision)
    return review.estimate(list(detector.rescore(threshold, where=where)), threshold, judged=judged, by_score=by_score)
