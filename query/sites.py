"""Sites: names for the folders a recorder's files sit in (``index sites FILE.csv``, ``index build --site``).

A sites CSV has ``site, latitude, longitude, folder`` per row, and may add ``time zone``: the zone the
site's recorder clocks keep (an IANA name or an offset), which places the starts a Song Meter's names
give as local times; a site may have several folders (one row each), a folder one site.  A folder is absolute or relative to the CSV's own folder, and must be
an indexed folder or one inside it.  Latitude and longitude are decimal degrees, both or neither.
Every bad row is named as ``file:line: what`` and then nothing is stored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from audioscan.indexer.media.recorded import time_zone
from audioscan.query.errors import QueryError, quoted
from audioscan.query.formats import csv_rows
from audioscan.query.label_files import read_text_file
from audioscan.query.labels import bad_rows, refused_character

MAX_SITE_LENGTH = 100


class SiteRow(NamedTuple):
    """One checked row: the site, where it is (None: not given) and a folder that is its own."""

    site: str
    latitude: float | None
    longitude: float | None
    folder: str
    zone: str | None = None


def check_site_name(name: str) -> None:
    """A site is a short name that every export keeps as it is (no control or format characters)."""
    if not name.strip():
        raise QueryError("a site needs a name (e.g. 'B' or 'north-ridge')")
    if len(name) > MAX_SITE_LENGTH:
        raise QueryError(f"a site name may have at most {MAX_SITE_LENGTH} characters; this one has {len(name)}")
    refused = refused_character(name)
    if refused is not None:
        raise QueryError(f"the site {quoted(name)} holds {refused}; give a name without control characters, "
                         "format characters or line separators")


def inside_indexed(folder: Path, roots: list[Path]) -> bool:
    """Whether ``folder`` is an indexed root or inside one."""
    return any(folder == root or root in folder.parents for root in roots)


def read_sites_file(path: Path, roots: list[Path]) -> list[SiteRow]:
    """Every row of the sites CSV at ``path``, checked; one sentence naming every bad row when any is bad."""
    source = path.name
    text = read_text_file(path)
    numbered = csv_rows(text, source)
    columns = ["site", "latitude", "longitude", "folder"]
    if numbered and "site" in [cell.lower() for cell in numbered[0][1]]:
        columns = ["zone" if cell.lower() in ("time zone", "time_zone", "timezone", "tz") else cell.lower()
                   for cell in numbered[0][1]]
        numbered = numbered[1:]
        if not {"site", "folder"} <= set(columns):
            raise QueryError(f"{source}: the header needs 'site' and 'folder' columns (and 'latitude', 'longitude')")
    rows, problems = [], []
    owner: dict[str, tuple[str, int]] = {}  # folder: (site, line)
    for number, cells in numbered:
        where = f"{source}:{number}"
        try:
            row = _row(dict(zip(columns, cells)), where, path.parent, roots)
        except QueryError as err:
            problems.append(err.template)
            continue
        if owner.get(row.folder, (row.site,))[0] != row.site:
            problems.append(f"{where}: {quoted(row.folder, 80)} is site {quoted(owner[row.folder][0])} on line "
                            f"{owner[row.folder][1]} already")
            continue
        owner[row.folder] = (row.site, number)
        rows.append(row)
    if problems:
        raise bad_rows(problems)
    if not rows:
        raise QueryError(f"{source} lists no sites; it needs rows of site, latitude, longitude and folder")
    return rows


def _row(cells: dict[str, str], where: str, beside: Path, roots: list[Path]) -> SiteRow:
    site, folder = cells.get("site", ""), cells.get("folder", "")
    try:
        check_site_name(site)
    except QueryError as err:
        raise QueryError(f"{where}: {err.template}") from None
    if not folder:
        raise QueryError(f"{where}: the row needs a folder")
    given = Path(folder).expanduser()
    try:
        resolved = (given if given.is_absolute() else beside / given).resolve()
    except (OSError, RuntimeError, ValueError):
        raise QueryError(f"{where}: {quoted(folder, 80)} is not a folder path") from None
    if not inside_indexed(resolved, roots):
        raise QueryError(f"{where}: {quoted(folder, 80)} is not an indexed folder or inside one; index it first "
                         "or check the path")
    latitude = _degrees(cells.get("latitude", ""), "latitude", 90.0, where)
    longitude = _degrees(cells.get("longitude", ""), "longitude", 180.0, where)
    if (latitude is None) != (longitude is None):
        raise QueryError(f"{where}: give both latitude and longitude, or neither")
    zone = cells.get("zone") or None
    if zone is not None:
        try:
            time_zone(zone)
        except ValueError as err:
            raise QueryError(f"{where}: {err}") from None
    return SiteRow(site.strip(), latitude, longitude, str(resolved), zone)


def _degrees(text: str, what: str, limit: float, where: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{where}: {quoted(text)} is not a {what} in decimal degrees") from None
    if not math.isfinite(value) or abs(value) > limit:
        raise QueryError(f"{where}: {quoted(text)} is not a {what}: it runs from -{limit:g} to {limit:g}")
    return value
