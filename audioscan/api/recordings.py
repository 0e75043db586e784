"""``Library.recordings``: when each recording started and where it was made, for notebooks.

A start is found by a build (a container's ``creation_time``, an AudioMoth or Song Meter file
name) or given by the user (:meth:`Recordings.give_times`, which wins); its source is kept and shown.
Sites name folders (:meth:`Recordings.name_site`); a file belongs to the site of the deepest one.
"""

from __future__ import annotations

import builtins
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from audioscan.indexer.store.journal import SiteEntry
from audioscan.query import labels as labelling
from audioscan.query.recording_times import read_times_file
from audioscan.query.sites import check_site_name, read_sites_file

if TYPE_CHECKING:
    from audioscan.api.library import Library


@dataclass(frozen=True)
class RecordingRow:
    """One indexed file's start (ISO 8601, with its zone's offset when known; None: not known), the
    zone, where the start came from, and its site."""

    path: str
    start: str | None
    _: KW_ONLY
    zone: str | None
    source: str | None
    site: str | None

    def as_json(self) -> dict:
        return {"path": self.path, "start": self.start, "zone": self.zone, "source": self.source, "site": self.site}


@dataclass(frozen=True)
class SiteRow:
    """A site: where it is and its clocks' zone (None: not given), its folders, and the indexed files and
    hours of audio in them."""

    name: str
    latitude: float | None
    _: KW_ONLY
    longitude: float | None
    zone: str | None
    folders: list[str]
    files: int
    hours: float

    def as_json(self) -> dict:
        return {"site": self.name, "latitude": self.latitude, "longitude": self.longitude, "zone": self.zone,
                "folders": self.folders, "files": self.files, "hours": self.hours}


class Recordings:
    """Starts and sites of a library's recordings."""

    def __init__(self, library: "Library") -> None:
        self._library = library

    def give_times(self, path: str | Path) -> int:
        """Store the starts of the CSV at ``path`` (path, start, time zone; see ``query.recording_times``):
        every row is checked first, and a file with a bad row stores nothing.  Returns the starts stored."""
        with self._library._annotator() as store:
            given = read_times_file(Path(path), labelling.all_media(store))
            return store.give_times([(row.media.id, row.local, row.zone) for row in given])

    def list(self) -> builtins.list[RecordingRow]:
        """Every indexed file with its start (or none) and site, by path."""
        with self._library._reader() as store:
            media = [item for item in store.media().values() if item.status == "ok"]
        return [RecordingRow(path=item.path, start=None if item.recorded is None else item.recorded.iso_at(0),
                             zone=None if item.recorded is None else item.recorded.zone,
                             source=None if item.recorded is None else item.recorded.source, site=item.site)
                for item in sorted(media, key=lambda item: item.path)]

    def load_sites(self, path: str | Path) -> builtins.list[SiteRow]:
        """Store the sites of the CSV at ``path`` (site, latitude, longitude, folder; see ``query.sites``):
        every row is checked first, and a file with a bad row stores nothing.  Returns every site."""
        path = Path(path)
        with self._library._annotator() as store:
            rows = read_sites_file(path, list(store.roots().values()))
            sites = {row.site: SiteEntry(row.site, row.latitude, longitude=row.longitude,
                                         zone=row.zone) for row in rows}
            store.set_sites(list(sites.values()), [(row.folder, row.site) for row in rows])
        return self.sites()

    def name_site(self, paths: Sequence[str | Path], name: str) -> None:
        """Name each folder (or file) of ``paths`` site ``name`` (its coordinates, if any, are kept)."""
        check_site_name(name)
        with self._library._annotator() as store:
            store.set_sites([SiteEntry(name.strip(), None, longitude=None)],
                            [(str(Path(item).expanduser().resolve()), name.strip()) for item in paths])

    def sites(self) -> builtins.list[SiteRow]:
        """Every site with its folders, and the indexed files and hours of audio it holds."""
        with self._library._reader() as store:
            sites, folders = store.sites(), store.site_folders()
            media = [item for item in store.media().values() if item.status == "ok"]
        return [SiteRow(name=site.name, latitude=site.latitude, longitude=site.longitude, zone=site.zone,
                        folders=sorted(folder for folder, owner in folders.items() if owner == site.name),
                        files=sum(item.site == site.name for item in media),
                        hours=round(sum(item.duration or 0.0 for item in media if item.site == site.name) / 3600, 3))
                for site in sites]
