"""perch-hoplite's database on disk (also what BirdNET-Analyzer 2.x writes), read and written.

A hoplite 1.x database is a folder: ``hoplite.sqlite`` (tables ``hoplite_metadata``, ``deployments``,
``recordings``, ``windows``, ``annotations``, as ``perch_hoplite/db/sqlite_usearch_impl.py`` creates
them; a window's ``offsets`` are ``[start, end]`` seconds as little-endian float64) and
``usearch.index``, a USearch index of the windows' vectors keyed by window id (float16, inner
product).  The metadata values are JSON: ``usearch_config`` (dimension, dtype, metric),
``model_config`` (``model_key``, ``embedding_dim``, ``model_config`` with the window and hop) and
``audio_sources`` (``audio_globs``: each dataset's ``base_path``, which the recordings' file names
are relative to).

This module only moves rows between that layout and plain records; deciding what a set or a label
is stays with ``vectors_in`` and ``vectors_out``.  A database from outside is hostile: it is opened
read-only with the schema untrusted, and every way it can be wrong - not hoplite, an older hoplite,
a damaged file, an index that disagrees with its tables - is one :class:`HopliteError` sentence.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import tempfile
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from audioscan.indexer.errors import StoreError

SQLITE_NAME = "hoplite.sqlite"
INDEX_NAME = "usearch.index"
# hoplite's LabelType.
NEGATIVE, POSITIVE, UNCERTAIN = 0, 1, 2
# hoplite's default USearch configuration (``get_default_usearch_config``).
USEARCH_DEFAULTS = {"dtype": "float16", "metric_name": "IP", "expansion_add": 256, "expansion_search": 128}
# The tables of perch-hoplite before 1.0, whose databases 1.x converts with its own migrations.
LEGACY_TABLES = {"hoplite_sources", "hoplite_embeddings", "hoplite_labels"}
TABLES = {
    "hoplite_metadata": ("key", "value"),
    "deployments": ("id", "name", "project", "latitude", "longitude"),
    "recordings": ("id", "filename", "datetime", "deployment_id"),
    "windows": ("id", "recording_id", "offsets"),
    "annotations": ("id", "recording_id", "offsets", "label", "label_type", "provenance"),
}
# hoplite's tables and indexes, statement for statement, so hoplite opens the file as its own.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hoplite_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deployments (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
    "project TEXT NOT NULL, latitude REAL, longitude REAL, UNIQUE (name, project))",
    "CREATE TABLE IF NOT EXISTS recordings (id INTEGER PRIMARY KEY AUTOINCREMENT, filename TEXT NOT NULL, "
    "datetime TEXT, deployment_id INTEGER REFERENCES deployments(id) ON DELETE CASCADE, "
    "UNIQUE (id, deployment_id), UNIQUE (filename, deployment_id))",
    "CREATE TABLE IF NOT EXISTS windows (id INTEGER PRIMARY KEY AUTOINCREMENT, recording_id INTEGER NOT NULL "
    "REFERENCES recordings(id) ON DELETE CASCADE, offsets FLOAT_LIST NOT NULL, UNIQUE (id, recording_id, offsets))",
    "CREATE TABLE IF NOT EXISTS annotations (id INTEGER PRIMARY KEY AUTOINCREMENT, recording_id INTEGER NOT NULL "
    "REFERENCES recordings(id) ON DELETE CASCADE, offsets FLOAT_LIST NOT NULL, label TEXT NOT NULL, "
    "label_type INTEGER NOT NULL, provenance TEXT NOT NULL, UNIQUE (id, recording_id, offsets))",
    "CREATE INDEX IF NOT EXISTS idx_annotations ON annotations(recording_id, offsets, label, label_type, provenance)",
    "CREATE INDEX IF NOT EXISTS idx_labels ON annotations(label, label_type, provenance)",
    "CREATE INDEX IF NOT EXISTS idx_recordings_deployment_id ON recordings(deployment_id)",
    "CREATE INDEX IF NOT EXISTS idx_windows_recording_id ON windows(recording_id)",
)
_OFFSETS = np.dtype("<f8")
FETCH_ROWS = 65_536


class HopliteError(StoreError):
    """A hoplite database that cannot be read or written as it is; nothing was stored."""


@dataclass(frozen=True)
class Recording:
    """A recording as hoplite keeps it: a file name relative to its dataset's base path."""

    id: int
    filename: str
    _: KW_ONLY
    datetime: str | None
    deployment: str
    project: str


@dataclass(frozen=True)
class Annotation:
    """A labelled stretch of a recording; ``label_type`` is hoplite's (0 negative, 1 positive, 2 uncertain)."""

    recording_id: int
    start: float
    _: KW_ONLY
    end: float
    label: str
    label_type: int
    provenance: str


@dataclass(frozen=True)
class Windows:
    """Every window of a database, as parallel arrays (ids are the USearch keys)."""

    ids: np.ndarray
    recording_ids: np.ndarray
    _: KW_ONLY
    starts: np.ndarray
    ends: np.ndarray


def _usearch():
    """USearch's index module, which only hoplite databases need (the ``hoplite`` extra)."""
    try:
        from usearch import index
    except ImportError:
        raise HopliteError("a hoplite database keeps its vectors in a USearch index, which is not installed; "
                           "pip install 'audioscan[hoplite]'") from None
    return index


def _offsets(blob: object, what: str) -> tuple[float, float]:
    if not isinstance(blob, bytes) or len(blob) != 2 * _OFFSETS.itemsize:
        raise HopliteError(f"{what} has offsets that are not [start, end] (two float64 numbers)")
    start, end = np.frombuffer(blob, dtype=_OFFSETS)
    return float(start), float(end)


def _offsets_blob(start: float, end: float) -> bytes:
    return np.asarray([start, end], dtype=_OFFSETS).tobytes()


class HopliteReader:
    """A hoplite database opened read-only and checked: its tables, its metadata, its index."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        sqlite_path, index_path = folder / SQLITE_NAME, folder / INDEX_NAME
        if not sqlite_path.is_file():
            raise HopliteError(f"{folder} holds no {SQLITE_NAME}; give the folder of a perch-hoplite (or "
                               "BirdNET-Analyzer) database")
        try:
            self._db = sqlite3.connect(f"{sqlite_path.resolve().as_uri()}?mode=ro", uri=True)
            self._db.execute("PRAGMA trusted_schema = OFF")
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as err:
            raise HopliteError(f"{sqlite_path} is not a readable SQLite database ({err}); it may be truncated or "
                               "damaged - copy it again from where it was made") from None
        self._check_tables(tables)
        self.metadata = self._metadata()
        config = self.metadata.get("usearch_config")
        if not isinstance(config, dict) or not isinstance(config.get("embedding_dim"), int) \
                or config["embedding_dim"] < 1:
            raise HopliteError(f"{sqlite_path} has no usable usearch_config (its embedding dimension) in "
                               "hoplite_metadata; it is not a complete hoplite database")
        self.dim = int(config["embedding_dim"])
        self._index = self._open_index(index_path)

    def _check_tables(self, tables: set[str]) -> None:
        if tables & LEGACY_TABLES and "windows" not in tables:
            raise HopliteError(f"{self.folder} is a database of perch-hoplite before 1.0 (tables "
                               f"{', '.join(sorted(tables & LEGACY_TABLES))}); open it in perch-hoplite 1.x, "
                               "which converts it, then import it")
        missing = sorted(set(TABLES) - tables)
        if missing:
            raise HopliteError(f"{self.folder / SQLITE_NAME} is not a perch-hoplite 1.x database (no table "
                               f"{', '.join(missing)})")
        for table, columns in TABLES.items():
            have = {row[1] for row in self._query(f"PRAGMA table_info({table})")}
            lacking = [column for column in columns if column not in have]
            if lacking:
                raise HopliteError(f"{self.folder / SQLITE_NAME}: table {table} has no column "
                                   f"{', '.join(lacking)}; it is not a perch-hoplite 1.x database")

    def _query(self, sql: str, *args: object) -> list[tuple]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as err:
            raise HopliteError(f"{self.folder / SQLITE_NAME} cannot be read ({err}); it may be truncated or "
                               "damaged - copy it again from where it was made") from None

    def _metadata(self) -> dict[str, object]:
        out = {}
        for key, value in self._query("SELECT key, value FROM hoplite_metadata"):
            try:
                out[str(key)] = json.loads(value)
            except (TypeError, ValueError, RecursionError):
                out[str(key)] = None
        return out

    def _open_index(self, path: Path):
        if not path.is_file():
            raise HopliteError(f"{self.folder} has no {INDEX_NAME} (the vectors); copy the whole database folder")
        try:
            index = _usearch().Index.restore(str(path), view=True)
        except (RuntimeError, ValueError, OSError) as err:
            raise HopliteError(f"{path} is not a readable USearch index ({err}); it may be truncated or damaged") \
                from None
        if index is None or index.ndim != self.dim:
            raise HopliteError(f"{path} does not hold vectors of the database's dimension {self.dim}; the index "
                               "and hoplite.sqlite do not belong together")
        return index

    def recordings(self) -> dict[int, Recording]:
        rows = self._query("SELECT r.id, r.filename, r.datetime, d.name, d.project FROM recordings r "
                           "LEFT JOIN deployments d ON r.deployment_id = d.id")
        return {int(rid): Recording(id=int(rid), filename=str(name), datetime=None if when is None else str(when),
                                    deployment="" if deployment is None else str(deployment),
                                    project="" if project is None else str(project))
                for rid, name, when, deployment, project in rows}

    def windows(self) -> Windows:
        """Every window, checked against the index: each has a vector, and the index holds no other."""
        rows = self._query("SELECT id, recording_id, offsets FROM windows ORDER BY id")
        ids = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        spans = [_offsets(row[2], f"window {row[0]}") for row in rows]
        windows = Windows(ids=ids, recording_ids=np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows)),
                          starts=np.asarray([s for s, _ in spans], dtype=np.float64),
                          ends=np.asarray([e for _, e in spans], dtype=np.float64))
        present = np.asarray(self._index.contains(ids), dtype=bool) if len(ids) else np.zeros(0, bool)
        if len(self._index) != len(ids) or not present.all():
            lacking = int((~present).sum())
            raise HopliteError(f"{self.folder / INDEX_NAME} holds {len(self._index)} vectors for {len(ids)} windows "
                               f"({lacking} window(s) without one); the index and the tables disagree - the "
                               "database was copied or written halfway")
        return windows

    def annotations(self) -> list[Annotation]:
        return [Annotation(recording_id=int(rid), start=span[0], end=span[1], label=str(label),
                           label_type=int(kind), provenance=str(provenance))
                for rid, blob, label, kind, provenance in
                self._query("SELECT recording_id, offsets, label, label_type, provenance FROM annotations ORDER BY id")
                for span in [_offsets(blob, "an annotation")]]

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of window ``ids`` (in that order) as float32, read from the memory-mapped index."""
        out = np.empty((len(ids), self.dim), dtype=np.float32)
        for first in range(0, len(ids), FETCH_ROWS):
            part = ids[first:first + FETCH_ROWS]
            out[first:first + len(part)] = np.stack(self._index.get(part)).astype(np.float32)
        return out

    def close(self) -> None:
        self._db.close()


class HopliteWriter:
    """A new hoplite database, built in a folder beside ``out`` and moved into place whole by
    :meth:`finish`, so that no reader ever meets half a database."""

    def __init__(self, out: Path, dim: int, *, metadata: dict[str, object]) -> None:
        usearch = _usearch()
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        # A folder of its own, new (never one that was there: only what this writer made is removed).
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        self._db = sqlite3.connect(self.tmp / SQLITE_NAME)
        try:
            for statement in _SCHEMA:
                self._db.execute(statement)
            config = {"embedding_dim": dim, **USEARCH_DEFAULTS}
            for key, value in {"usearch_config": config, **metadata}.items():
                self._db.execute("INSERT INTO hoplite_metadata (key, value) VALUES (?, ?)", (key, json.dumps(value)))
        except BaseException:
            self.abandon()
            raise
        self._index = usearch.Index(ndim=dim, metric=usearch.MetricKind.IP, dtype=usearch.ScalarKind.F16,
                            expansion_add=USEARCH_DEFAULTS["expansion_add"],
                            expansion_search=USEARCH_DEFAULTS["expansion_search"])
        self._next_window = 1

    def deployment(self, name: str, project: str, *, latitude: float | None = None,
                   longitude: float | None = None) -> int:
        cursor = self._db.execute("INSERT INTO deployments (name, project, latitude, longitude) VALUES (?, ?, ?, ?)",
                                  (name, project, latitude, longitude))
        return int(cursor.lastrowid or 0)

    def recording(self, filename: str, deployment_id: int, *, datetime: str | None = None) -> int:
        cursor = self._db.execute("INSERT INTO recordings (filename, datetime, deployment_id) VALUES (?, ?, ?)",
                                  (filename, datetime, deployment_id))
        return int(cursor.lastrowid or 0)

    def windows(self, recording_ids: np.ndarray, starts: np.ndarray, *, ends: np.ndarray, vectors: np.ndarray) -> None:
        """Windows and their vectors; ids run on from the last batch, as hoplite's AUTOINCREMENT gives them."""
        ids = np.arange(self._next_window, self._next_window + len(starts), dtype=np.int64)
        self._db.executemany("INSERT INTO windows (id, recording_id, offsets) VALUES (?, ?, ?)",
                             zip(ids.tolist(), recording_ids.tolist(),
                                 (_offsets_blob(s, e) for s, e in zip(starts.tolist(), ends.tolist()))))
        if len(ids):
            self._index.add(ids.astype(np.uint64), vectors)
        self._next_window += len(starts)

    def annotations(self, rows: Iterator[Annotation]) -> int:
        cursor = self._db.executemany(
            "INSERT INTO annotations (recording_id, offsets, label, label_type, provenance) VALUES (?, ?, ?, ?, ?)",
            ((a.recording_id, _offsets_blob(a.start, a.end), a.label, a.label_type, a.provenance) for a in rows))
        return max(0, cursor.rowcount)

    def finish(self) -> None:
        """Commit the tables, save the index, and move the folder to ``out`` (which must not exist)."""
        self._db.commit()
        self._db.close()
        path = self.tmp / INDEX_NAME
        try:
            self._index.save(str(path))
        except RuntimeError:  # USearch says only "failed to serialize": the disk is the likely cause
            full = shutil.disk_usage(self.tmp).free < self._index.serialized_length
            raise OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC if full else errno.EIO),
                          str(path)) from None
        self.tmp.rename(self.out)

    def abandon(self) -> None:
        self._db.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
