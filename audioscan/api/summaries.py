"""Detections over time (``rescore NAME --summary hour|day|site``): counts per period beside the hours
of audio scored in it (``query.summary``), for notebooks and the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from audioscan.query.errors import QueryError
from audioscan.query.filters import MomentFilter, restrict
from audioscan.query.rescore import DEFAULT_THRESHOLD
from audioscan.query.summary import PERIODS, PeriodCount, summarise

if TYPE_CHECKING:
    from audioscan.api.detector import Detector, JointDetector


def detections_over_time(detector: "Detector | JointDetector", by: str, threshold: float = DEFAULT_THRESHOLD, *,
                         precision: float | None = None, where: MomentFilter | None = None) -> list[PeriodCount]:
    """The detections ``detector.rescore`` finds (with the same threshold or precision and filter), counted
    per ``by`` (hour, day or site) with the hours of audio scored in each."""
    if by not in PERIODS:
        raise QueryError(f"`summary` {by!r} is none of {', '.join(PERIODS)}")
    found = detector.rescore(threshold, precision=precision, where=where)
    first = getattr(detector, "detectors", [detector])[0]
    with first.library._reader() as store:
        scored = restrict(store.snapshot(first.info), where)  # the windows that were scored: no vector is read
    return summarise(found, scored, by)
