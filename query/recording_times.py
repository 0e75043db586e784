"""Reading the recording starts a user gives (``index times FILE.csv``): path, start, time zone.

A start is the recorder's clock reading, ISO 8601 (``2024-03-31T01:30:00``; a space for the ``T``
is fine), with an offset when the clock's offset is known (``+02:00``, ``Z``); the zone column names
the clock's zone (``Europe/Berlin``, ``UTC``, ``+10:00``), and may be empty when it is not known (the
start is then a local time).  A clock reading that never happened in the zone (inside the hour a
spring change skips) or happened twice (the hour an autumn change repeats, unless its offset says
which) is refused, as is an offset the zone did not have then.  Every bad row is named as
``file:line: what`` and then nothing is stored, as label files are read.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import NamedTuple

from audioscan.indexer.media.recorded import time_zone
from audioscan.query.errors import QueryError, quoted
from audioscan.query.formats import csv_rows
from audioscan.query.label_files import read_text_file
from audioscan.query.labels import Media, bad_rows, resolve_media

_ZONE_HEADERS = ("time zone", "time_zone", "timezone", "zone", "tz")


class GivenTime(NamedTuple):
    """One row of a times file, checked: the file, its clock's start (wall time) and zone (None: unknown)."""

    media: Media
    local: dt.datetime
    zone: str | None
    where: str


def read_times_file(path: Path, media: list[Media]) -> list[GivenTime]:
    """Every row of the times CSV at ``path``, each placed on an indexed file of ``media``; one
    sentence naming every bad row when any is bad."""
    source = path.name
    rows = _rows(read_text_file(path), source)
    given, problems = [], []
    seen: dict[int, int] = {}  # media id: the line that gave its start
    for number, cells in rows:
        where = f"{source}:{number}"
        try:
            found = _given(cells, where, media)
        except QueryError as err:
            problems.append(err.template)
            continue
        if found.media.id in seen:
            problems.append(f"{where}: {quoted(found.media.rel)} was given a start already on line "
                            f"{seen[found.media.id]}")
            continue
        seen[found.media.id] = number
        given.append(found)
    if problems:
        raise bad_rows(problems)
    if not given:
        raise QueryError(f"{source} lists no recording starts; it needs rows of path, start and time zone")
    return given


def _rows(text: str, source: str) -> list[tuple[int, dict[str, str]]]:
    """The numbered rows as {path, start, zone}: by a header naming them, else in that order."""
    numbered = csv_rows(text, source)
    if not numbered:
        return []
    header = [cell.lower() for cell in numbered[0][1]]
    columns = ["path", "start", "zone"]
    if "path" in header or "start" in header:
        if not {"path", "start"} <= set(header):
            raise QueryError(f"{source}: the header needs 'path' and 'start' columns (and 'time zone')")
        columns = ["zone" if name in _ZONE_HEADERS else name for name in header]
        numbered = numbered[1:]
    return [(number, dict(zip(columns, cells))) for number, cells in numbered]


def _given(cells: dict[str, str], where: str, media: list[Media]) -> GivenTime:
    if not cells.get("path") or not cells.get("start"):
        raise QueryError(f"{where}: the row needs a path and a start")
    try:
        found = resolve_media(None, cells["path"], media=media)
    except QueryError as err:
        raise QueryError(f"{where}: {err.template}") from None
    zone = cells.get("zone") or None
    local = _clock(cells["start"], zone, where)
    return GivenTime(found, local, zone if zone is not None else _offset_name(cells["start"]), where)


def _clock(text: str, zone: str | None, where: str) -> dt.datetime:
    """The wall-clock start ``text`` says, checked against ``zone``."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise QueryError(f"{where}: {quoted(text)} is not a date and time (like 2024-03-31T01:30:00, an "
                         "offset such as +02:00 when known)") from None
    if len(text) <= 10:
        raise QueryError(f"{where}: {quoted(text)} is a date without a time of day; give the time it started")
    local = when.replace(tzinfo=None)
    if zone is None:
        return local
    try:
        tz = time_zone(zone)
    except ValueError as err:
        raise QueryError(f"{where}: {err}") from None
    offsets = _offsets(local, tz)
    if not offsets:
        raise QueryError(f"{where}: {local:%Y-%m-%d %H:%M:%S} never happened in {zone} (the clocks skipped that "
                         "hour); check the start")
    given = when.utcoffset()
    if given is not None:
        if given not in offsets:
            raise QueryError(f"{where}: the offset of {quoted(text)} is not {zone}'s at that time "
                             f"({', '.join(_offset_text(o) for o in offsets)})")
        return local.replace(fold=offsets.index(given))
    elif len(offsets) > 1:
        raise QueryError(f"{where}: {local:%Y-%m-%d %H:%M:%S} happened twice in {zone} (the clocks went back); "
                         f"give its offset, {' or '.join(_offset_text(o) for o in offsets)}")
    return local


def _offsets(local: dt.datetime, tz: dt.tzinfo) -> list[dt.timedelta]:
    """The UTC offsets under which wall time ``local`` happened in ``tz``: none in a skipped hour, two
    in a repeated one (``fold`` picks between them; a reading that does not come back unchanged never was)."""
    found: list[dt.timedelta] = []
    for fold in (0, 1):
        aware = local.replace(tzinfo=tz, fold=fold)
        if aware.astimezone(dt.timezone.utc).astimezone(tz).replace(tzinfo=None) == local:
            offset = aware.utcoffset()
            if offset is not None and offset not in found:
                found.append(offset)
    return found


def _offset_text(offset: dt.timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _offset_name(text: str) -> str | None:
    """The zone a start with an offset and no zone column names: that fixed offset (``UTC`` for zero)."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    offset = when.utcoffset()
    return None if offset is None else ("UTC" if not offset else _offset_text(offset))
