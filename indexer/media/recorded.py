"""When a recording started: read from a field recorder's file name or a container's metadata.

A start is kept as its recorder's clock read it (a wall-clock ``local`` time) with the clock's
time ``zone`` when it is known, because that is what a person asks about ("between 2 and 5 am")
and what the sources say: AudioMoth names its files ``YYYYMMDD_HHMMSS.WAV`` in UTC unless it was
set to local time; a Wildlife Acoustics Song Meter names them ``PREFIX[_CHANNEL]_YYYYMMDD_HHMMSS``
(``$`` instead of the second ``_`` when GPS set its clock) in the local time it was set to, whose
zone the name does not say; an AudioMoth set to a time zone names its files in that zone's time and
says which in the WAV comment it writes (``Recorded at 06:30:00 10/03/2019 (UTC+1) by AudioMoth ...``); a container's ``creation_time`` is UTC.  A name that looks like a
recorder's but holds an impossible date (month 13, 25 o'clock) gives no time: a file is listed
as without a time, never given a made-up one.  Absolute instants are worked out with ``zoneinfo``,
so a recording that runs across a daylight-saving change keeps its true clock times.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A start's source is 'user' (`index times`, the user's word), or 'container', 'audiomoth' or 'song meter'
# (found again by any build).  NOT_FOUND is what a build records when it looked and found no start, so it
# does not look again while the file is unchanged.
NOT_FOUND = "none"

_AUDIOMOTH = re.compile(r"(?P<date>\d{8})_(?P<time>\d{6})T?\.[A-Za-z0-9]+")
_SONG_METER = re.compile(r"[^_]+(?:_[^_]+)*?_(?:(?:0|1|0\+1)_)?(?P<date>\d{8})[_$](?P<time>\d{6})\.[A-Za-z0-9]+")
_AUDIOMOTH_COMMENT = re.compile(r"Recorded at \d{2}:\d{2}:\d{2} \d{2}/\d{2}/\d{4} "
                                r"\(UTC(?:(?P<sign>[+-])(?P<hours>\d{1,2})(?::(?P<minutes>\d{2}))?)?\)")
_OFFSET = re.compile(r"(?:UTC)?(?P<sign>[+-])(?P<hours>\d{2}):?(?P<minutes>\d{2})")
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+){0,2}")
# MP4 and QuickTime count from 1904, others from 1970: a zero there means the writer did not know.
_NO_TIME_YEARS = (1904, 1970)


@dataclass(frozen=True)
class RecordingStart:
    """When a recording started: its clock's ``local`` wall time, the clock's IANA ``zone`` (or
    None when unknown: the time is then a local time of no known offset), and its ``source``."""

    local: dt.datetime
    zone: str | None
    source: str

    def tz(self) -> dt.tzinfo | None:
        return None if self.zone is None else time_zone(self.zone)

    def at(self, seconds: float) -> dt.datetime:
        """The clock time ``seconds`` into the recording: aware in its zone (across a
        daylight-saving change too), or a naive local time when the zone is unknown."""
        step = dt.timedelta(seconds=float(seconds))
        zone = self.tz()
        if zone is None:
            return self.local + step
        instant = self.local.replace(tzinfo=zone).astimezone(dt.timezone.utc) + step
        return instant.astimezone(zone)

    def iso_at(self, seconds: float) -> str:
        """ISO 8601 of :meth:`at`, to the millisecond (no offset when the zone is unknown)."""
        return self.at(seconds).isoformat(timespec="milliseconds")


@lru_cache(maxsize=256)
def time_zone(name: str) -> dt.tzinfo:
    """The zone an IANA name (``Europe/Berlin``, ``UTC``) or a fixed offset (``+10:00``) names;
    ValueError when none does (a name is only ever looked up in the zone database, never as a path)."""
    offset = _OFFSET.fullmatch(name)
    if offset:
        minutes = int(offset["hours"]) * 60 + int(offset["minutes"])
        if minutes > 14 * 60 or int(offset["minutes"]) >= 60:
            raise ValueError(f"{name!r} is not a UTC offset (they run from -14:00 to +14:00)")
        return dt.timezone(dt.timedelta(minutes=-minutes if offset["sign"] == "-" else minutes))
    if not _ZONE_NAME.fullmatch(name):
        raise ValueError(f"no time zone is called {name[:40]!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError(f"no time zone is called {name[:40]!r}") from err


def _clock(date: str, time: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(date + time, "%Y%m%d%H%M%S")
    except ValueError:
        return None  # an impossible date or time: no start rather than a guessed one


def audiomoth_zone(comment: str | None) -> str:
    """The zone an AudioMoth's WAV comment says its clock was set to (``UTC+1`` -> ``+01:00``); UTC,
    the firmware's default, when there is no such comment."""
    found = _AUDIOMOTH_COMMENT.match(comment or "")
    if not found or not found["sign"]:
        return "UTC"
    return f"{found['sign']}{int(found['hours']):02d}:{int(found['minutes'] or 0):02d}"


def from_name(name: str, comment: str | None = None) -> RecordingStart | None:
    """The start a field recorder wrote into a file's name (AudioMoth: UTC, or the zone its WAV
    ``comment`` names; Song Meter: the recorder's local time, zone unknown), or None."""
    found = _AUDIOMOTH.fullmatch(name)
    if found:
        local = _clock(found["date"], found["time"])
        return None if local is None else RecordingStart(local, audiomoth_zone(comment), "audiomoth")
    found = _SONG_METER.fullmatch(name)
    if found:
        local = _clock(found["date"], found["time"])
        return None if local is None else RecordingStart(local, None, "song meter")
    return None


def from_container(creation_time: str | None) -> RecordingStart | None:
    """The start a container's ``creation_time`` tag says (UTC), or None when it says nothing usable."""
    if not creation_time or len(creation_time) > 64:
        return None
    text = creation_time.strip().replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.year in _NO_TIME_YEARS and (when.month, when.day) == (1, 1):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return RecordingStart(when.replace(microsecond=0), "UTC", "container")


def found_start(name: str, creation_time: str | None, *, comment: str | None = None) -> RecordingStart | None:
    """What a build finds for one file: the container's UTC time first (a camera's clock, written
    by the file's own muxer), else a recorder's name (placed by the recorder's ``comment``)."""
    return from_container(creation_time) or from_name(name, comment)
