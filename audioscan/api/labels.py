"""``Library.labels``: time ranges and markers on media, for notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import pyarrow as pa

from audioscan.query import labels as labelling
from audioscan.query.moments import Moment

if TYPE_CHECKING:
    from audioscan.api.library import Library


class Labels:
    """The labels of a library: time ranges and markers on media, positive or negative."""

    def __init__(self, library: "Library") -> None:
        self._library = library

    def add(self, media: str, start: float, end: float | None, label: str, *, negative: bool = False,
            source: str = "api") -> int | None:
        """Label ``[start, end)`` of ``media`` (``end=None``: a point marker); returns the new label's
        id, or None when the same label is already there."""
        with self._library._annotator() as store:
            target = labelling.resolve_media(store, str(media))
            added = labelling.add_labels(store, [(target, label, start, end, not negative)], source)
        return added[0] if added else None

    def add_rows(self, rows: Iterable[tuple[str, str, float, float | None, bool]], *, source: str = "api") -> int:
        """Add many (media, label, start, end or None, positive) rows at once, in one transaction."""
        with self._library._annotator() as store:
            known = labelling.all_media(store)
            resolved: dict[str, labelling.Media] = {}
            prepared = []
            for media, label, start, end, positive in rows:
                if media not in resolved:
                    resolved[media] = labelling.resolve_media(store, media, known)
                prepared.append((resolved[media], label, start, end, positive))
            return len(labelling.add_labels(store, prepared, source))

    def import_file(self, path: str | Path, *, media: str | None = None, label: str | None = None,
                    negative: bool = False) -> int:
        """Add every row of a label file (CSV, a Raven selection table, or an Audacity label track
        of ``media``); ``label`` names every row, ``negative`` makes every row negative.  Returns
        how many were added."""
        path = Path(path)
        rows = labelling.read_label_file(path, media=media, label=label, negative=negative)
        return self.add_rows(rows, source=f"import:{path.name}")

    def list(self, label: str | None = None) -> list[labelling.Label]:
        with self._library._reader() as store:
            return store.labels(label)

    def remove(self, ids: Sequence[int]) -> int:
        with self._library._annotator() as store:
            return labelling.remove_labels(store, list(ids))

    def conflicts(self, label: str | None = None) -> list[tuple[labelling.Label, labelling.Label]]:
        """Positive and negative labels of one name that overlap on one file."""
        return labelling.conflicts(self.list(label))

    def to_arrow(self, label: str | None = None) -> pa.Table:
        return pa.Table.from_pylist([item.as_json() for item in self.list(label)])

    def to_csv(self, items: list[labelling.Label]) -> str:
        """Labels as the CSV ``import_file`` reads back (``path,start,end,label,negative``)."""
        return labelling.to_csv(items)

    def moments(self, items: list[labelling.Label]) -> list[Moment]:
        """Labels as moments for export (negatives marked " (negative)", as Audacity tracks read back)."""
        rates = self._library._frame_rates()
        return [Moment(i.media.path, i.start, i.end, None,
                       i.label + ("" if i.positive else labelling.NEGATIVE_SUFFIX), rates.get(i.media.path))
                for i in items]
