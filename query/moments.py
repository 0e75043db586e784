"""The one record of a result: search hits, detections, suggestions, labels to export, clips to cut."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import KW_ONLY, dataclass

from audioscan.indexer.media.recorded import RecordingStart
from audioscan.query.timecode import timecode

# How every text export marks a negative label after its name (and every reader reads one back).
NEGATIVE_SUFFIX = " (negative)"


@dataclass(frozen=True)
class Moment:
    """What every result is: a stretch of one media file, how well it matches (cosine similarity
    for search, probability for detections; None for labels), and what it is.

    ``start``/``end`` span the windows that matched; ``peak`` is where their evidence puts the
    sound and ``onset``/``offset`` its estimated extent (``audioscan.query.runs``).  A
    detection also carries the classifier's ``decision`` value, which ranks detections whose
    calibrated probabilities are equal.  ``recording`` is when its file's recording started (None:
    not known), which gives the moment a clock time (:meth:`clock`); ``site`` is its file's site;
    ``channel`` which channel of it was heard (a set indexed with ``--channels split``), 0 for the mix.
    """

    path: str
    start: float
    _: KW_ONLY
    end: float
    score: float | None = None
    label: str = ""
    fps: float | None = None  # the video's frame rate, for timecodes
    duration: float | None = None  # the whole file's, so a clip cut around it stays inside
    peak: float | None = None
    onset: float | None = None
    offset: float | None = None
    decision: float | None = None
    recording: RecordingStart | None = None
    site: str | None = None
    channel: int = 0  # 0: the file's mono mix (or, for a label, the whole file); else the channel, from 1
    negative: bool = False  # a label saying the sound is NOT there (only labels are negative)

    @property
    def marked_label(self) -> str:
        """The label as text exports write it: a negative's name followed by `` (negative)``."""
        return self.label + NEGATIVE_SUFFIX if self.negative else self.label

    def clock(self, seconds: float | None = None) -> dt.datetime | None:
        """The clock time ``seconds`` into the file (default: the moment's start), or None when its
        recording's start is not known."""
        if self.recording is None:
            return None
        return self.recording.at(self.start if seconds is None else seconds)

    def iso_start(self) -> str | None:
        """The moment's start as ISO 8601 (with the offset of its zone, none when that is unknown)."""
        return None if self.recording is None else self.recording.iso_at(self.start)

    @property
    def centre(self) -> float:
        """Where a clip of this moment is centred: its peak, else the middle of its span."""
        return (self.start + self.end) / 2 if self.peak is None else self.peak

    def as_json(self, use_timecode: bool = False) -> dict:
        data = {"path": self.path, "start": self._time(self.start, use_timecode),
                "end": self._time(self.end, use_timecode), "score": _number(self.score)}
        for name in ("peak", "onset", "offset"):
            value = getattr(self, name)
            if value is not None:
                data[name] = self._time(value, use_timecode)
        if self.decision is not None:
            data["decision"] = _number(self.decision)
        if self.label:
            data["label"] = self.label
        if self.negative:
            data["negative"] = True
        data["datetime"] = self.iso_start()
        data["site"] = self.site
        data["channel"] = self.channel
        return data

    def _time(self, seconds: float, use_timecode: bool) -> float | str:
        return timecode(seconds, self.fps) if use_timecode else round(seconds, 3)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 4)
