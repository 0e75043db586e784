"""The store's tables of when and where: recording starts the user gave, sites and their folders.

These are the user's work (a person typed them; no build can find them again), so they are
changed the way labels are (``Annotations._edit``: a catalog transaction that also appends the
change to the journal) and come back with ``index repair`` from the journal when the catalog is
damaged or lost.  Starts a build finds (container tags, recorder file names) live on the media rows
and are found again by the next build.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from contextlib import AbstractContextManager
from typing import Callable, Sequence

import duckdb

from audioscan.indexer.store import journal
from audioscan.indexer.store.journal import SiteEntry, TimeEntry, Work
from audioscan.indexer.store.records import utcnow
from audioscan.indexer.store.scalar import records, scalar

PLACE_TABLES = ("given_times", "sites", "site_folders")


class Places:
    """Given starts and sites, as named methods of the store (mixed into ``Store``, which provides
    ``_edit`` and ``connect``)."""

    path: Path
    _edit: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]
    connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

    def give_times(self, rows: Sequence[tuple[int, dt.datetime, str | None]]) -> int:
        """Store (media id, local start, zone) rows, replacing starts given before for those files; the
        caller has checked every row.  A start's ``fold`` says which of a repeated wall time it is.
        Returns how many were stored."""
        if not rows:
            return 0
        with self._edit() as con:
            now = utcnow()
            con.executemany("INSERT OR REPLACE INTO given_times VALUES (?, ?, ?, ?, ?)",
                            [[media_id, local, zone, local.fold, now] for media_id, local, zone in rows])
            entries = _time_entries(con, [media_id for media_id, _, _ in rows])
            journal.append(self.path, {"op": "give_times", "times": [entry.as_list() for entry in entries]})
        return len(rows)

    def set_sites(self, sites: Sequence[SiteEntry], folders: Sequence[tuple[str, str]]) -> None:
        """Add ``sites`` (a site already there keeps its coordinates and zone unless new ones are given) and name
        ``folders`` (absolute path, site) for them."""
        with self._edit() as con:
            if sites:
                con.executemany("INSERT INTO sites (name, latitude, longitude, zone) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT (name) DO UPDATE SET "
                                "latitude = coalesce(excluded.latitude, sites.latitude), "
                                "longitude = coalesce(excluded.longitude, sites.longitude), "
                                "zone = coalesce(excluded.zone, sites.zone)",
                                [[site.name, site.latitude, site.longitude, site.zone] for site in sites])
            if folders:
                con.executemany("INSERT OR REPLACE INTO site_folders VALUES (?, ?)", [list(pair) for pair in folders])
            journal.append(self.path, {"op": "set_sites", "sites": [site.as_list() for site in sites],
                                       "folders": [list(pair) for pair in folders]})

    def sites(self) -> list[SiteEntry]:
        """Every site the user named, by name."""
        with self.connect() as con:
            return records(SiteEntry, con, sql="SELECT name, latitude, longitude, zone FROM sites ORDER BY name")

    def site_folders(self) -> dict[str, str]:
        """Every folder named for a site (absolute path -> site)."""
        with self.connect() as con:
            return dict(con.execute("SELECT folder, site FROM site_folders ORDER BY folder").fetchall())


def _time_entries(con: duckdb.DuckDBPyConnection, media_ids: list[int] | None = None) -> list[TimeEntry]:
    rows = con.execute("SELECT r.path, m.path, strftime(g.local, '%Y-%m-%dT%H:%M:%S.%f'), g.zone, g.fold "
                       "FROM given_times g "
                       "JOIN media m ON m.id = g.media_id JOIN roots r ON r.id = m.root_id "
                       "WHERE ? IS NULL OR list_contains(?, g.media_id) ORDER BY r.path, m.path",
                       [media_ids, media_ids]).fetchall()
    return [TimeEntry(root=root, path=path, local=local, zone=zone, fold=fold)
            for root, path, local, zone, fold in rows]


def read_places(con: duckdb.DuckDBPyConnection, work: Work) -> None:
    """Fill ``work`` with the given starts and sites the catalog holds (none in a catalog older than them)."""
    present = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not set(PLACE_TABLES) <= present:
        return
    work.times = {(entry.root, entry.path): entry for entry in _time_entries(con)}
    has_zone = scalar(con, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'sites' "
                           "AND column_name = 'zone'")
    work.sites = {site.name: site for site in records(
        SiteEntry, con, sql=f"SELECT name, latitude, longitude, {'zone' if has_zone else 'NULL AS zone'} FROM sites "
                        "ORDER BY name")}
    work.site_folders = dict(con.execute("SELECT folder, site FROM site_folders ORDER BY folder").fetchall())


def write_places(con: duckdb.DuckDBPyConnection, work: Work, *, media_id: Callable[[str, str], int]) -> None:
    """Put ``work``'s given starts and sites into a catalog that holds none yet; ``media_id(root, path)``
    finds (or lists as missing) the file a start belongs to."""
    now = utcnow()
    inserts: dict[str, list[list[object]]] = {"given_times": [[media_id(entry.root, entry.path),
                                                               dt.datetime.fromisoformat(entry.local), entry.zone,
                                entry.fold, now] for entry in work.times.values()],
               "sites": [[site.name, site.latitude, site.longitude, site.zone] for site in work.sites.values()],
               "site_folders": [list(pair) for pair in work.site_folders.items()]}
    for table, rows in inserts.items():
        if rows:
            con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
