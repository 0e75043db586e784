"""The one record of a result: search hits, detections, suggestions, labels to export, clips to cut."""

from __future__ import annotations

import math
from dataclasses import dataclass

from audioscan.query.timecode import timecode


@dataclass(frozen=True)
class Moment:
    """What every result is: a stretch of one media file, how well it matches (cosine similarity
    for search, probability for detections; None for labels), and what it is."""

    path: str
    start: float
    end: float
    score: float | None = None
    label: str = ""
    fps: float | None = None  # the video's frame rate, for timecodes
    duration: float | None = None  # the whole file's, so a clip cut around it stays inside

    def as_json(self, use_timecode: bool = False) -> dict:
        data = {"path": self.path, "start": self._time(self.start, use_timecode),
                "end": self._time(self.end, use_timecode),
                "score": None if self.score is None or not math.isfinite(self.score) else round(self.score, 4)}
        if self.label:
            data["label"] = self.label
        return data

    def _time(self, seconds: float, use_timecode: bool) -> float | str:
        return timecode(seconds, self.fps) if use_timecode else round(seconds, 3)
