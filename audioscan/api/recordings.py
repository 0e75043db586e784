"""``Library.recordings``: when each recording started and where it was made, for notebooks.

A start is found by a build (a container's ``creation_time``, an AudioMoth or Song Meter file
name) or given by the user (:meth:`Recordings.give_times`, which wins); its source is kept and shown.
Sites name folders (:meth:`Recordings.name_site`); a file belongs to the site of the deepest one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audioscan.query import labels as labelling
from audioscan.query.recording_times import read_times_file

if TYPE_CHECKING:
    from audioscan.api.library import Library


@dataclass(frozen=True)
class RecordingRow:
    """One indexed file's start (ISO 8601, with its zone's offset when known; None: not known), the
    zone, where the start came from, and its site."""

    path: str
    start: str | None
    zone: str | None
    source: str | None
    site: str | None

    def as_json(self) -> dict:
        return {"path": self.path, "start": self.start, "zone": self.zone, "source": self.source, "site": self.site}


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

    def list(self) -> list[RecordingRow]:
        """Every indexed file with its start (or none) and site, by path."""
        with self._library._reader() as store:
            media = [item for item in store.media().values() if item.status == "ok"]
        return [RecordingRow(path=item.path, start=None if item.recorded is None else item.recorded.iso_at(0),
                             zone=None if item.recorded is None else item.recorded.zone,
                             source=None if item.recorded is None else item.recorded.source, site=item.site)
                for item in sorted(media, key=lambda item: item.path)]
