"""Vectors in from other tools: a set made from another tool's window vectors, which arrive as one
:class:`Incoming` (a Parquet file through ``parquet_in``, a perch-hoplite database through ``hoplite_in``).

The vectors are read a batch of files at a time, so memory holds one batch's vectors, not the
file; rows may come in any order.  Rows are matched to media files under ``media_root`` (or the file's own ``root``); files not found
there are listed, not fatal.  The set then appears whole or not at all: it is created only after
every check, its windows are committed in batches through the store's commit protocol, and if a
commit fails the set is removed again.  A model audioscan runs (the export of an audioscan set,
BIRDNET's vectors) gives a native set that later builds keep up to date; another tool's model
gives a set that search from a stored window, training, rescoring and suggestions use as they are.
Labels that come with the vectors (``NAME.labels.parquet`` beside the file, a database's
annotations) are returned for the caller to place on the set's media: placing them is the query
layer's.
"""

from __future__ import annotations

import os
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from audioscan.indexer.errors import StoreError
from audioscan.indexer.media.decode import header_facts
from audioscan.indexer.media.discover import fingerprint
from audioscan.indexer.store.files import valid_set_name
from audioscan.indexer.store.records import (FOREIGN_WEIGHTS, MIX, MIX_CHANNEL, SPLIT, Commit, FileVectors, MediaRow,
                                             SetInfo)
from audioscan.indexer.store.segments import content_id
from audioscan.indexer.store.store import Store
from audioscan.models import registry

# Windows committed together: a few commits for a large import, each well under a second of catalog work.
BATCH_WINDOWS = 100_000
DEFAULT_RATE = 16_000


class VectorsError(StoreError):
    """A file of vectors that cannot be imported as it is; nothing was stored."""


@dataclass(frozen=True)
class IncomingLabel:
    """A label that comes with the vectors, keyed as they are (root, path, start, end); a marker's
    end is its start."""

    root: str | None
    path: str
    _: KW_ONLY
    start: float
    end: float
    label: str
    positive: bool
    channel: int = MIX_CHANNEL


@dataclass(frozen=True)
class Incoming:
    """Checked window vectors from another tool: every row's place, and its vectors read on demand
    (``fetch`` of row numbers: a Parquet row group or a slice of a USearch index at a time), so
    memory holds the rows of one batch of files, never the file; and the labels that came with them."""

    source: Path
    roots: list[str | None]
    _: KW_ONLY
    paths: list[str]
    starts: np.ndarray
    ends: np.ndarray
    dim: int
    description: dict
    fetch: Callable[[np.ndarray], np.ndarray]
    labels: tuple[IncomingLabel, ...] = ()
    uncertain: int = 0  # labels the other tool holds as neither positive nor negative (left out)
    channels: np.ndarray | None = None  # each row's channel (from 1) of vectors of each channel apart; None: mixes

    @property
    def split(self) -> bool:
        return self.channels is not None

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (in that order), as float32."""
        return self.fetch(rows)


@dataclass(frozen=True)
class VectorsImported:
    """What an import made: the set, the files and windows it holds, the rows' files not found."""

    set_name: str
    files: int
    _: KW_ONLY
    windows: int
    unmatched: list[str]
    labels: int = 0  # labels placed on the set's media
    pending: tuple[IncomingLabel, ...] = ()  # labels that came with the vectors, not yet placed
    uncertain: int = 0  # labels left out: the other tool held them as neither positive nor negative
    not_native: str | None = None  # why vectors said to be a model's audioscan runs were kept as the tool's own


def _cut(incoming: Incoming) -> tuple[float, float]:
    """The set's window and hop: as the file says, else the windows' typical length and step."""
    window, hop = incoming.description.get("window"), incoming.description.get("hop")
    if isinstance(window, (int, float)) and isinstance(hop, (int, float)) and window > 0 and hop > 0:
        return float(window), float(hop)
    window = float(np.median(incoming.ends - incoming.starts))
    _, files = np.unique(np.asarray(incoming.paths, dtype=object).astype(str), return_inverse=True)
    order = np.lexsort((incoming.starts, files))
    steps = np.diff(incoming.starts[order])[np.diff(files[order]) == 0]
    steps = steps[steps > 0]
    return round(window, 6), round(float(np.median(steps)) if len(steps) else window, 6)


def import_vectors(store: Store, incoming: Incoming, *, name: str | None = None, media_root: Path | None = None
                   ) -> VectorsImported:
    """Make a set of the ``incoming`` vectors (see the module docstring); the caller holds the writer
    lock.  Their labels come back in the report, for the caller to place once the set is there."""
    path = incoming.source
    description = incoming.description
    window, hop = _cut(incoming)
    model = str(description.get("model") or "IMPORTED").upper()
    weights_id = str(description.get("weights_id") or f"{FOREIGN_WEIGHTS}{content_id(path)[:12]}")
    if model not in registry.names() and not weights_id.startswith(FOREIGN_WEIGHTS):
        weights_id = f"{FOREIGN_WEIGHTS}{weights_id}"  # a model audioscan cannot run: no build ever fills this set
    rate = int(description.get("sample_rate") or DEFAULT_RATE)
    dim = incoming.dim
    wanted = name or str(description.get("set") or path.name.removesuffix(".parquet"))
    _refuse_existing(store, wanted, model=model, weights_id=weights_id, window=window, hop=hop, rate=rate)
    files, unmatched = _match_files(incoming, media_root, path)
    rows = _media_rows(store, files)
    info = store.ensure_set(model, weights_id, window=window, hop=hop, sample_rate=rate, dim=dim, name=wanted,
                            channels=SPLIT if incoming.split else MIX)
    try:
        windows = _commit_windows(store, info, incoming, files, rows)
    except BaseException:
        store.remove_set(info)  # the set appears whole or not at all
        raise
    return VectorsImported(set_name=info.name, files=len(files), windows=windows, unmatched=unmatched,
                           pending=incoming.labels, uncertain=incoming.uncertain)


def _refuse_existing(store: Store, name: str, model: str, weights_id: str, window: float, hop: float,
                     rate: int) -> None:
    if not valid_set_name(name):
        raise VectorsError(f"'{name}' cannot name a set (it becomes a folder name): give `name` with letters, "
                           "digits, '-', '_' or '.'")
    for info in store.sets():
        if info.name == name:
            raise VectorsError(f"the store already has a set named {name}; give the import another `name`")
        if (info.model, info.weights_id, info.window, info.hop, info.sample_rate) == (model, weights_id, window,
                                                                                      hop, rate):
            raise VectorsError(f"the store already holds these vectors' model and cut as set {info.name}; "
                               "import them into another store, or remove that set first")


@dataclass(frozen=True)
class _File:
    root: Path
    rel: str
    rows: np.ndarray  # the file's rows in the incoming table, by start


def _match_files(incoming: Incoming, media_root: Path | None, source: Path) -> tuple[list[_File], list[str]]:
    """The rows' media files found on disk, and the ones not found (as the file names them)."""
    by_file: dict[tuple[str | None, str], list[int]] = {}
    for row, key in enumerate(zip(incoming.roots, incoming.paths)):
        by_file.setdefault(key, []).append(row)
    if media_root is None and any(root is None for root, _ in by_file):
        raise VectorsError(f"{source} gives paths without a root folder; give `media_root`, the folder they are "
                           "relative to")
    found, unmatched = [], []
    for (root, rel), rows in by_file.items():
        base = Path(media_root if media_root is not None else str(root)).expanduser().resolve()
        file = base / rel
        if not file.resolve().is_relative_to(base) or Path(rel).is_absolute():
            raise VectorsError(f"{source} names {rel!r}, which is not a path inside its root folder {base}; every "
                               "row's path must lead to a file under its root (nothing was imported)")
        if not file.is_file():
            unmatched.append(rel if root is None else str(Path(root) / rel))
            continue
        heard = incoming.channels[rows] if incoming.channels is not None else np.zeros(len(rows), np.int16)
        order = np.asarray(rows)[np.lexsort((incoming.starts[rows], heard))]
        found.append(_File(root=base, rel=rel, rows=order))
    return found, unmatched


def _media_rows(store: Store, files: list[_File]) -> dict[tuple[Path, str], tuple[MediaRow, bool]]:
    """Each matched file's media row: the one the store has (False), or a new one read from the file (True)."""
    rows: dict[tuple[Path, str], tuple[MediaRow, bool]] = {}
    for root in dict.fromkeys(file.root for file in files):
        root_id = store.ensure_root(root)
        known = store.media_of_root(root_id)
        for file in (f for f in files if f.root == root):
            row = known.get(file.rel)
            if row is not None and row.status == "ok":
                rows[(root, file.rel)] = (row, False)
                continue
            stat = os.stat(root / file.rel)
            facts = header_facts(root / file.rel)
            row = MediaRow(store.new_media_id() if row is None else row.id, root_id, path=file.rel, size=stat.st_size,
                           mtime_ns=stat.st_mtime_ns, fingerprint=fingerprint(root / file.rel),
                           duration=facts.declared, status="ok", fps=facts.fps)
            rows[(root, file.rel)] = (row, True)
    return rows


def _duration(row: MediaRow, ends: np.ndarray) -> float:
    """A file's duration as its windows give it: the cut's last window ends at the file's end (the rule
    ``index check`` holds a native set to), so several windows say it exactly, more exactly than a
    container's header; one window (a file shorter than it) leaves it to the header."""
    return float(ends.max()) if len(ends) > 1 or not row.duration else float(row.duration)


def _commit_windows(store: Store, info: SetInfo, incoming: Incoming, files: list[_File],
                    rows: dict[tuple[Path, str], tuple[MediaRow, bool]]) -> int:
    """Commit the files' windows in batches of about :data:`BATCH_WINDOWS`; returns the windows committed."""
    batch: list[_File] = []
    done = 0
    for file in files:
        batch.append(file)
        if sum(len(item.rows) for item in batch) >= BATCH_WINDOWS:
            done += _commit_batch(store, info, incoming, batch, rows)
            batch = []
    if batch:
        done += _commit_batch(store, info, incoming, batch, rows)
    return done


def _commit_batch(store: Store, info: SetInfo, incoming: Incoming, batch: list[_File],
                  rows: dict[tuple[Path, str], tuple[MediaRow, bool]]) -> int:
    """One commit of ``batch``'s files: their new media rows, and their windows with the vectors read
    from the row groups that hold them."""
    vectors = incoming.vectors_at(np.concatenate([file.rows for file in batch]))
    change, at = Commit(), 0
    for file in batch:
        row, new = rows[(file.root, file.rel)]
        if new:
            change.media.append(replace(row, duration=_duration(row, incoming.ends[file.rows])))
        change.vectors.append(FileVectors(row.id, info.id, starts=incoming.starts[file.rows],
                                          ends=incoming.ends[file.rows], vectors=vectors[at: at + len(file.rows)],
                                          channels=None if incoming.channels is None else incoming.channels[file.rows]))
        at += len(file.rows)
    store.commit(change)
    return change.windows()
