"""Times as people type them, and timecodes as video editors read them.

Input: ``754.5``, ``12:34.5`` (minutes:seconds) or ``1:02:03.250`` (hours:minutes:seconds).
Output: seconds, or SMPTE non-drop-frame timecode ``HH:MM:SS:FF`` at a file's frame
rate (frames counted at the nominal integer rate, 30 for 29.97, as NDF does).
"""

from __future__ import annotations

import math
import re

from audioscan.query.errors import QueryError, quoted

# Hours are bounded so that no typed time overflows a float or Python's integer-string limit.
_CLOCK = re.compile(r"^(?:(\d{1,7}):)?(\d{1,2}):(\d{1,2}(?:\.\d{0,9})?)$")
DEFAULT_FPS = 25.0  # for audio-only files, which have no frame rate of their own


def parse_time(text: str | float) -> float:
    """Seconds from ``754.5``, ``12:34.5`` or ``1:02:03.250``; one sentence for anything else."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        raw = str(text).strip()
        found = _CLOCK.match(raw)
        if found:
            hours, minutes, seconds = found.groups()
            if int(minutes) >= 60 and hours is not None or float(seconds) >= 60:
                raise QueryError(f"{quoted(raw)} is not a time: minutes and seconds go up to 59")
            value = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        else:
            try:
                if len(raw) > 64:  # no time is written that long
                    raise ValueError(raw)
                value = float(raw)
            except ValueError:
                raise QueryError(f"{quoted(raw)} is not a time; write seconds (754.5), minutes:seconds (12:34.5) "
                                 "or hours:minutes:seconds (1:02:03.250)") from None
    if not math.isfinite(value):
        raise QueryError(f"{quoted(text)} is not a finite time")
    return value


def nominal_fps(fps: float | None) -> int:
    return max(1, round(fps or DEFAULT_FPS))


def to_frames(seconds: float, fps: float | None) -> int:
    return int(round(seconds * (fps or DEFAULT_FPS)))


def timecode(seconds: float, fps: float | None, *, offset_frames: int = 0) -> str:
    """SMPTE NDF timecode of ``seconds`` (plus ``offset_frames``) at ``fps``."""
    base = nominal_fps(fps)
    frames = to_frames(seconds, fps) + offset_frames
    hours, rest = divmod(frames, 3600 * base)
    minutes, rest = divmod(rest, 60 * base)
    secs, frame = divmod(rest, base)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}:{frame:02d}"


def parse_timecode(text: str, fps: float | None) -> float:
    """Seconds of an ``HH:MM:SS:FF`` timecode at ``fps`` (the inverse of :func:`timecode`)."""
    hours, minutes, secs, frame = (int(part) for part in text.strip().split(":"))
    base = nominal_fps(fps)
    return (((hours * 60 + minutes) * 60 + secs) * base + frame) / (fps or DEFAULT_FPS)


def clock(seconds: float) -> str:
    """``hh-mm-ss.mmm``: a readable time for file names (no colons, which Windows refuses)."""
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}-{minutes:02d}-{rest // 1000:02d}.{rest % 1000:03d}"
