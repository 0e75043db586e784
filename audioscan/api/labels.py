"""``Library.labels``: time ranges and markers on media, for notebooks."""

from __future__ import annotations

import builtins
import functools
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import pyarrow as pa

from audioscan.indexer.store.protocols import StoreReader
from audioscan.indexer.store.records import NewLabel
from audioscan.query import label_files
from audioscan.query.editor_files import FrameRate
from audioscan.query import labels as labelling
from audioscan.indexer.media.decode import MAX_SPLIT_CHANNELS
from audioscan.query.errors import QueryError, QueryNotFoundError
from audioscan.query.filters import MomentFilter, nothing_matches
from audioscan.query.moments import Moment

# The one rule for label names, for front-ends to check a name where it enters.
check_label_name = labelling.check_label_name
refused_character = labelling.refused_character
READ_FORMATS = label_files.READ_FORMATS  # what import_file reads, for front-ends' help

if TYPE_CHECKING:
    from audioscan.api.library import Library


@dataclass(frozen=True)
class ImportReport:
    """What an import did (or, with ``check``, would do): labels added (not counting ones already
    there) and their ids, the rows already stored, the rows left out with ``skip_missing`` as (the
    file they named, why), and the distinct labels read per name as (positives, negatives)."""

    added: int
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _: KW_ONLY
    ids: list[int] = field(default_factory=list)
    already: int = 0
    names: dict[str, tuple[int, int]] = field(default_factory=dict)


def _resolved(store, text: str, known: list, skip_missing: bool):
    """The indexed media file ``text`` names, or - with ``skip_missing`` - why there is none."""
    try:
        found = labelling.resolve_media(store, text, media=known)
    except QueryNotFoundError as err:
        if not skip_missing:
            raise QueryNotFoundError(f"{err.template} (give `skip_missing` to import the other rows)") from None
        return str(err)
    if found.status != "ok":
        why = f"{found.rel} is {'gone from disk' if found.status == 'missing' else 'not indexed'}"
        if not skip_missing:
            raise QueryNotFoundError(f"{why}; labels need an indexed file (give `skip_missing` to import the "
                                     "other rows)")
        return why
    return found


def _prepared(store: StoreReader, given: list[labelling.LabelRow], skip_missing: bool
              ) -> tuple[list[NewLabel], list[tuple[str, str]]]:
    """The labels ``given`` are (each once), every one checked, and - with ``skip_missing`` - the
    (path, why) of the rows left out for naming no indexed file."""
    known = labelling.all_media(store)
    resolved: dict[str, labelling.Media | str] = {}
    ready, skipped = [], []
    for row in given:
        text = row.media or ""
        if text not in resolved:
            resolved[text] = _resolved(store, text, known, skip_missing)
        target = resolved[text]
        if isinstance(target, str):
            skipped.append((text, target))
            continue
        ready.append(labelling.PlacedLabel(target, row))
    return list(dict.fromkeys(labelling.prepare_labels(ready))), skipped


class Labels:
    """The labels of a library: time ranges and markers on media, positive or negative."""

    def __init__(self, library: "Library") -> None:
        self._library = library

    def add(self, media: str, start: float, *, end: float | None, label: str, negative: bool = False,
            source: str = "api", channel: int = 0) -> int | None:
        """Label ``[start, end)`` of ``media`` (``end=None``: a point marker) on ``channel`` (0: the whole
        file; else one channel, from 1, which trains a set built with --channels split on that channel
        alone); returns the new label's id, or None when the same label is already there."""
        if not 0 <= channel <= MAX_SPLIT_CHANNELS:
            raise QueryError(f"`channel` {channel} is not a channel; give one from 1 to {MAX_SPLIT_CHANNELS}, or 0 "
                             "for the whole file", value=channel)
        with self._library._annotator() as store:
            target = labelling.resolve_media(store, str(media))
            row = labelling.LabelRow(media=str(media), label=label, start=start, end=end, positive=not negative,
                                     channel=channel)
            added = labelling.add_labels(store, [labelling.PlacedLabel(target, row)], source=source)
        return added[0] if added else None

    def add_rows(self, rows: Iterable[labelling.LabelRow | tuple[str, str, float, float | None, bool]], *,
                 source: str = "api", skip_missing: bool = False, check: bool = False) -> "ImportReport":
        """Add many (media, label, start, end or None, positive) rows at once, in one short transaction.

        Every row is checked first and every bad one reported (``file:line: why`` for the rows of a
        file); a row naming a file that is not indexed (or gone from disk) stops the whole import -
        nothing is added - unless ``skip_missing``, which adds the others and reports the rows it
        left out.  ``check``: check everything and report what would be added, storing nothing."""
        given = [labelling.LabelRow(*row) for row in rows]
        ids: list[int] = []
        if check:
            with self._library._reader() as store:
                prepared, skipped = _prepared(store, given, skip_missing)
                already = labelling.stored_already(store, prepared)
        else:
            with self._library._annotator() as writer:
                prepared, skipped = _prepared(writer, given, skip_missing)
                ids = writer.add_labels(prepared, source)
                already = len(prepared) - len(ids)
        names: dict[str, tuple[int, int]] = {}
        for item in prepared:
            positives, negatives = names.get(item.label, (0, 0))
            names[item.label] = (positives + item.positive, negatives + (not item.positive))
        return ImportReport(added=len(prepared) - already, skipped=skipped, ids=ids, already=already, names=names)

    def import_file(self, path: str | Path, *, media: str | None = None, label: str | None = None,
                    negative: bool = False, skip_missing: bool = False, check: bool = False) -> "ImportReport":
        """Add every row of a label file (any format ``labels list`` writes: CSV, JSON, NDJSON, a Raven
        selection table, an Audacity label track of ``media``, an EDL or a markers CSV at each file's
        frame rate); ``label`` names every row,
        ``negative`` makes every row negative; ``skip_missing`` and ``check`` as in :meth:`add_rows`."""
        path = Path(path)
        if label is not None:
            check_label_name(label)  # before reading: a file with no rows would never meet the name
        rows = label_files.read_label_file(path, media=media, label=label, negative=negative, rate=self._frame_rate())
        return self.add_rows(rows, source=f"import:{path.name}", skip_missing=skip_missing, check=check)

    def _frame_rate(self) -> FrameRate:
        """A file name's frame rate, read once per name (None for audio, or for a name no file has:
        the import reports that row where it places it)."""
        with self._library._reader() as store:
            known = labelling.all_media(store)

        @functools.cache
        def rate(name: str) -> float | None:
            try:
                found = labelling.resolve_media(None, name, media=known)
            except QueryNotFoundError:
                return None
            return self._library._frame_rates({found.path}).get(found.path)

        return rate

    def list(self, label: str | None = None, *, where: MomentFilter | None = None) -> builtins.list[labelling.Label]:
        """Every label (of one name), or those ``where`` keeps (judged by where each starts)."""
        with self._library._reader() as store:
            items = store.labels(label)
        if not where:
            return items
        media = {item.media.id: item.media for item in items}
        keep = where.windows(media, np.asarray([item.media.id for item in items], dtype=np.int64),
                             starts=np.asarray([item.start for item in items], dtype=np.float64),
                             channels=np.asarray([item.channel for item in items], dtype=np.int16))
        if not keep.any():
            raise nothing_matches(where)
        return [item for item, kept in zip(items, keep) if kept]

    def remove(self, ids: Sequence[int]) -> int:
        with self._library._annotator() as store:
            return labelling.remove_labels(store, list(ids))

    def conflicts(self, label: str | None = None, *, ids: Iterable[int] | None = None
                  ) -> builtins.list[tuple[labelling.Label, labelling.Label]]:
        """Positive and negative labels of one name that overlap on one file; with ``ids``, only the
        pairs one of those labels is in (what an import or an add just brought)."""
        items = self.list(label)
        return labelling.conflicts(items) if ids is None else labelling.conflicting_pairs(items, set(ids))

    def to_arrow(self, label: str | None = None) -> pa.Table:
        return pa.Table.from_pylist([item.as_json() for item in self.list(label)])

    def to_csv(self, items: builtins.list[labelling.Label]) -> str:
        """Labels as the CSV ``import_file`` reads back (``path,start,end,label,negative``; then ``datetime``
        and ``site``, which an import does not need, and ``channel``, which it reads)."""
        return labelling.to_csv(items)

    def moments(self, items: builtins.list[labelling.Label]) -> builtins.list[Moment]:
        """Labels as moments for export (each export marks a negative as its readers read one back)."""
        rates = self._library._frame_rates()
        return [Moment(i.media.path, i.start, end=i.end, score=None,
                       label=i.label, negative=not i.positive, fps=rates.get(i.media.path),
                       recording=i.media.recorded, site=i.media.site, channel=i.channel)
                for i in items]
