"""Vectors to and from the tools people already use: Parquet files and perch-hoplite databases
(``query/vectors_out.py`` writes them, ``indexer/vectors_in.py`` and ``indexer/hoplite_in.py`` read
them).  The functions are :class:`~audioscan.api.library.Library` methods."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audioscan.api.native_vectors import as_native_birdnet
from audioscan.indexer.hoplite_in import read_hoplite
from audioscan.indexer.parquet_in import labels_path, read_vectors
from audioscan.indexer.vectors_in import VectorsImported, import_vectors as import_incoming
from audioscan.query.labels import LabelRow
from audioscan.query.search import needs_stats
from audioscan.query.vectors_out import VectorsWritten, write_hoplite, write_labels_parquet, write_parquet

if TYPE_CHECKING:
    from audioscan.api.library import Library


def export_vectors(self: Library, out: str | Path, *, model: str | None = None, fmt: str = "parquet",
                   half: bool = False, labels: bool = False) -> VectorsWritten:
    """Every live window of a set with its vector (``query/vectors_out.py``): Parquet at ``out``
    (float16 with ``half``; with ``labels``, the labels beside it as ``NAME.labels.parquet``), or
    with ``fmt="hoplite"`` a perch-hoplite database in the new folder ``out`` (float16, unit
    vectors as search ranks them; with ``labels``, the labels as its annotations)."""
    from audioscan import __version__

    out = Path(out)
    if fmt == "hoplite":
        with self._reader() as store:
            info = store.find_set(model)
            snapshot = store.snapshot(info, stats=needs_stats(info))
            sites = store.sites()
        centre = snapshot.set_mean().astype(np.float32) if needs_stats(snapshot.info) else None
        return write_hoplite(snapshot, self.labels.list() if labels else [], out=out, centre=centre,
                             version=__version__, sites=sites)
    written = write_parquet(self.snapshot(model), out, half=half, version=__version__)
    if labels:
        written = replace(written, labels_path=labels_path(out),
                          labels=write_labels_parquet(self.labels.list(), labels_path(out)))
    return written


def import_vectors(self: Library, path: str | Path, *, fmt: str = "parquet", name: str | None = None,
                   media_root: str | Path | None = None) -> VectorsImported:
    """A new set made of another tool's vectors (``indexer/vectors_in.py``): a Parquet file, or with
    ``fmt="hoplite"`` a perch-hoplite database folder; rows matched to media files under
    ``media_root`` (or the file's own roots), files not found listed, not fatal.  The labels that
    came with them are placed too; if they cannot be, the set is removed again: all or nothing.
    A hoplite database of BirdNET V2.4 vectors becomes a BIRDNET set when they are BIRDNET's
    (``api/native_vectors.py``); ``not_native`` says why not when they were said to be."""
    root = None if media_root is None else Path(media_root)
    if fmt == "hoplite":
        incoming, not_native = as_native_birdnet(read_hoplite(Path(path)), root)
    else:
        incoming, not_native = read_vectors(Path(path)), None
    with self._whole(write=True) as store:
        done = import_incoming(store, incoming, name=name, media_root=root)
    try:
        placed = self.labels.add_rows(
            [LabelRow(media=str(Path(media_root if media_root is not None else label.root or "") / label.path),
                      label=label.label, start=label.start, end=None if label.end == label.start else label.end,
                      positive=label.positive, channel=label.channel)
             for label in done.pending], source=f"import:{Path(path).name}", skip_missing=True)
    except BaseException:
        self.remove_set(done.set_name)
        raise
    return replace(done, labels=placed.added, pending=(), not_native=not_native)
