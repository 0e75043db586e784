"""The store: a DuckDB catalog plus immutable FAISS segments, changed one commit at a time.

``Store.open(path, write=True)`` takes the writer lock, brings the catalog schema up
to date and deletes segment files the catalog does not list (what a crash between
"segment renamed" and "catalog committed" leaves behind).  :meth:`Store.commit`
writes each set's new segment durably first and only then records it, its windows,
the media rows and the per-file statistics in one catalog transaction, so every
reader sees either all of a commit or none of it.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pyarrow as pa

from audioscan.indexer.store import catalog
from audioscan.indexer.errors import StoreError
from audioscan.indexer.faults import crash_point
from audioscan.indexer.store.lock import WriterLock
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow, SetInfo, utcnow
from audioscan.indexer.store.segments import read_segment, segment_name, write_segment

CATALOG_FILE = "catalog.duckdb"
SETS_DIR = "sets"
LOCK_FILE = "LOCK"


class Store:
    """A store folder; reading is always allowed, changing needs ``write=True``."""

    def __init__(self, path: Path, write: bool) -> None:
        self.path = Path(path)
        self.write = write
        self.catalog_path = self.path / CATALOG_FILE
        self.sets_dir = self.path / SETS_DIR
        self._lock: WriterLock | None = None
        self._next_ids: dict[str, int] = {}

    # ----------------------------------------------------------------- opening
    @classmethod
    @contextmanager
    def open(cls, path: Path, write: bool = False) -> Iterator["Store"]:
        store = cls(path, write)
        if write:
            store._open_writer()
        else:
            store._open_reader()
        try:
            yield store
        finally:
            if store._lock is not None:
                store._lock.release()

    def _open_writer(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(self.path / LOCK_FILE)
        self._lock.acquire()
        try:
            with self.connect() as con:
                catalog.migrate(con, self.catalog_path)
                for table, column in (("media", "id"), ("windows", "id"), ("segments", "id"), ("sets", "id"),
                                      ("roots", "id"), ("runs", "id")):
                    self._next_ids[table] = con.execute(f"SELECT coalesce(max({column}), 0) + 1 FROM {table}").fetchone()[0]
            self.remove_garbage()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise

    def _open_reader(self) -> None:
        if not self.catalog_path.exists():
            raise StoreError(f"there is no audioscan store at {self.path}; "
                             "run 'audioscan index build FOLDER' first, or pass --store")
        with self.connect() as con:
            found = catalog.version(con)
        catalog.check_version(found, self.catalog_path)
        if found < catalog.SCHEMA_VERSION:
            # An older catalog is migrated once, under the writer lock, then read as usual.
            with Store.open(self.path, write=True):
                pass

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived catalog connection (read-only unless this store writes)."""
        with catalog.connect(self.catalog_path, read_only=not self.write) as con:
            yield con

    @contextmanager
    def edit(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short read-write connection for the query layer's own tables (labels, classifiers).

        Builds never touch those tables and allocate no ids in them, so editing them
        needs no writer lock: a label can be added while a long build runs, and DuckDB
        serialises the two processes' brief connections.
        """
        with catalog.connect(self.catalog_path, read_only=False) as con:
            yield con

    def allocate_id(self, table: str, count: int = 1) -> int:
        first = self._next_ids[table]
        self._next_ids[table] = first + count
        return first

    def _require_write(self) -> None:
        if not self.write:
            raise RuntimeError("this Store was opened read-only")

    # ----------------------------------------------------------------- garbage
    def listed_files(self) -> set[Path]:
        """Every file under sets/ the catalog refers to: segments and derived ANN indexes."""
        with self.connect() as con:
            rows = con.execute("SELECT s.name, g.file FROM segments g JOIN sets s ON s.id = g.set_id UNION ALL "
                               "SELECT s.name, a.file FROM ann_indexes a JOIN sets s ON s.id = a.set_id").fetchall()
        return {self.sets_dir / name / file for name, file in rows}

    def unlisted_files(self) -> list[Path]:
        """Files under sets/ that no committed catalog row refers to (crash leftovers)."""
        if not self.sets_dir.exists():
            return []
        listed = self.listed_files()
        return sorted(p for p in self.sets_dir.rglob("*") if p.is_file() and p not in listed)

    def remove_garbage(self) -> list[Path]:
        self._require_write()
        garbage = self.unlisted_files()
        for item in garbage:
            item.unlink(missing_ok=True)
        return garbage

    # ----------------------------------------------------------------- sets and roots
    def sets(self) -> list[SetInfo]:
        with self.connect() as con:
            rows = con.execute("SELECT id, name, model, weights_id, window_s, hop_s, sample_rate, dim, dtype "
                               "FROM sets ORDER BY id").fetchall()
        return [SetInfo(*row) for row in rows]

    def ensure_set(self, model: str, weights_id: str, window: float, hop: float, sample_rate: int,
                   dim: int, dtype: str = "fp32") -> SetInfo:
        """The set for exactly these parameters, created on first use."""
        self._require_write()
        for info in self.sets():
            if (info.model, info.weights_id, info.window, info.hop, info.sample_rate) == (
                    model, weights_id, window, hop, sample_rate):
                if info.dim != dim:
                    raise StoreError(f"set {info.name} holds {info.dim}-d vectors but {model} now gives {dim}-d")
                return info
        name = f"{model}-w{window:g}-h{hop:g}"
        taken = {info.name for info in self.sets()}
        if name in taken:  # same model and cut, other weights: keep them apart
            name = f"{name}-{weights_id[:8]}"
        info = SetInfo(self.allocate_id("sets"), name, model, weights_id, window, hop, sample_rate, dim, dtype)
        with self.connect() as con:
            con.execute("INSERT INTO sets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [info.id, info.name, info.model, info.weights_id, info.window, info.hop,
                         info.sample_rate, info.dim, info.dtype, utcnow()])
        (self.sets_dir / info.name).mkdir(parents=True, exist_ok=True)
        return info

    def find_set(self, name: str | None = None) -> SetInfo:
        """A set by set name or model name; without a name, the store's only set."""
        sets = self.sets()
        if not sets:
            raise StoreError(f"the store at {self.path} holds no vectors yet; run 'audioscan index build FOLDER'")
        if name is None:
            if len(sets) == 1:
                return sets[0]
            raise StoreError("the store holds several embedding sets (" + ", ".join(s.name for s in sets)
                             + "); choose one with --model")
        matches = [s for s in sets if s.name == name] or [s for s in sets if s.model == name.upper()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreError(f"no embedding set for '{name}' in this store; it has: "
                             + ", ".join(s.name for s in sets))
        raise StoreError(f"'{name}' matches several sets (" + ", ".join(s.name for s in matches)
                         + "); give the full set name")

    def ensure_root(self, root: Path) -> int:
        self._require_write()
        text = str(root)
        with self.connect() as con:
            row = con.execute("SELECT id FROM roots WHERE path = ?", [text]).fetchone()
            if row:
                return row[0]
            root_id = self.allocate_id("roots")
            con.execute("INSERT INTO roots VALUES (?, ?, ?)", [root_id, text, utcnow()])
        return root_id

    # ----------------------------------------------------------------- media
    def media_of_root(self, root_id: int) -> dict[str, MediaRow]:
        with self.connect() as con:
            rows = con.execute("SELECT id, root_id, path, size, mtime_ns, fingerprint, duration, status, error "
                               "FROM media WHERE root_id = ?", [root_id]).fetchall()
        return {row[2]: MediaRow(*row) for row in rows}

    def embedded_sets(self, root_id: int) -> dict[int, set[int]]:
        """For each media id under the root, the sets it is completely embedded in."""
        with self.connect() as con:
            rows = con.execute("SELECT ms.media_id, ms.set_id FROM media_sets ms JOIN media m ON m.id = ms.media_id "
                               "WHERE m.root_id = ?", [root_id]).fetchall()
        done: dict[int, set[int]] = {}
        for media_id, set_id in rows:
            done.setdefault(media_id, set()).add(set_id)
        return done

    def non_media(self, root_id: int) -> dict[str, tuple[int, int]]:
        with self.connect() as con:
            rows = con.execute("SELECT path, size, mtime_ns FROM non_media WHERE root_id = ?", [root_id]).fetchall()
        return {path: (size, mtime) for path, size, mtime in rows}

    def new_media_id(self) -> int:
        self._require_write()
        return self.allocate_id("media")

    # ----------------------------------------------------------------- commit
    def commit(self, change: Commit) -> None:
        """Make ``change`` durable: segments first, then one catalog transaction."""
        self._require_write()
        if not change:
            return
        sets = {info.id: info for info in self.sets()}
        segment_rows, window_tables, stats_rows, written = [], [], [], []
        by_set: dict[int, list[FileVectors]] = {}
        for item in change.vectors:
            by_set.setdefault(item.set_id, []).append(item)
        for set_id, items in by_set.items():
            info = sets[set_id]
            count = sum(len(item.starts) for item in items)
            first = self.allocate_id("windows", count)
            ids = np.arange(first, first + count, dtype=np.int64)
            segment_id = self.allocate_id("segments")
            path = self.sets_dir / info.name / segment_name(segment_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_segment(path, ids, np.concatenate([item.vectors for item in items]), info.dtype)
            written.append(path)
            segment_rows.append([segment_id, set_id, path.name, count, utcnow()])
            window_tables.append(pa.table({
                "id": ids,
                "media_id": np.concatenate([np.full(len(i.starts), i.media_id, np.int64) for i in items]),
                "set_id": np.full(count, set_id, np.int32),
                "start_s": np.concatenate([i.starts for i in items]).astype(np.float64),
                "end_s": np.concatenate([i.ends for i in items]).astype(np.float64),
                "segment_id": np.full(count, segment_id, np.int32),
                "alive": np.ones(count, dtype=bool),
            }))
            for item in items:
                vec = item.vectors.astype(np.float64)
                stats_rows.append([item.media_id, set_id, len(item.starts),
                                   vec.mean(axis=0).astype(np.float32).tolist(),
                                   vec.std(axis=0).astype(np.float32).tolist()])
        crash_point("segment-written")
        with self.connect() as con:
            con.execute("BEGIN")
            try:
                self._apply(con, change, segment_rows, window_tables, stats_rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                for path in written:
                    path.unlink(missing_ok=True)
                raise
        crash_point("committed")

    @staticmethod
    def _apply(con: duckdb.DuckDBPyConnection, change: Commit, segment_rows: list, window_tables: list,
               stats_rows: list) -> None:
        for row in change.media:
            con.execute(
                "INSERT INTO media VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "root_id = excluded.root_id, path = excluded.path, size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, fingerprint = excluded.fingerprint, duration = excluded.duration, "
                "status = excluded.status, error = excluded.error, updated_at = excluded.updated_at",
                [row.id, row.root_id, row.path, row.size, row.mtime_ns, row.fingerprint, row.duration,
                 row.status, row.error, utcnow()])
        for media_id, set_id in change.retire:
            where, args = ("media_id = ?", [media_id]) if set_id is None else (
                "media_id = ? AND set_id = ?", [media_id, set_id])
            con.execute(f"UPDATE windows SET alive = false WHERE alive AND {where}", args)
            con.execute(f"DELETE FROM media_sets WHERE {where}", args)
        for row in segment_rows:
            con.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?)", row)
        for table in window_tables:
            con.register("new_windows", table)
            con.execute("INSERT INTO windows SELECT * FROM new_windows")
            con.unregister("new_windows")
        if stats_rows:
            con.executemany("INSERT INTO media_sets VALUES (?, ?, ?, ?, ?)", stats_rows)
        for root_id, path, size, mtime in change.non_media:
            con.execute("INSERT OR REPLACE INTO non_media VALUES (?, ?, ?, ?)", [root_id, path, size, mtime])

    def record_run(self, command: str, started: dt.datetime, stats: dict) -> None:
        self._require_write()
        with self.connect() as con:
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                        [self.allocate_id("runs"), command, started, utcnow(), json.dumps(stats)])

    # ----------------------------------------------------------------- reading vectors
    def segments(self, info: SetInfo) -> list[tuple[int, Path, int]]:
        """(id, file, vector count) of the set's live segments, oldest first."""
        with self.connect() as con:
            rows = con.execute("SELECT id, file, n_vectors FROM segments WHERE set_id = ? ORDER BY id",
                               [info.id]).fetchall()
        return [(sid, self.sets_dir / info.name / file, n) for sid, file, n in rows]

    def iter_vectors(self, info: SetInfo) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of the live windows, one segment at a time (memory stays bounded)."""
        with self.connect() as con:
            segs = con.execute("SELECT id, file, n_vectors FROM segments WHERE set_id = ? ORDER BY id",
                               [info.id]).fetchall()
            alive = con.execute("SELECT segment_id, id FROM windows WHERE set_id = ? AND alive ORDER BY segment_id",
                                [info.id]).fetchnumpy()
        seg_of, ids_alive = alive["segment_id"], alive["id"]
        bounds = np.searchsorted(seg_of, [sid for sid, _, _ in segs] + [np.iinfo(np.int64).max])
        for k, (_, file, count) in enumerate(segs):
            live = ids_alive[bounds[k]: bounds[k + 1]]
            if not len(live):
                continue
            try:
                ids, vectors = read_segment(self.sets_dir / info.name / file)
            except RuntimeError as err:
                raise StoreError(f"segment {file} of set {info.name} could not be read (it may have been "
                                 "compacted while reading: run the command again; else run "
                                 "'audioscan index check')") from err
            if len(live) == count:
                yield ids, vectors
            else:
                keep = np.isin(ids, live, assume_unique=True)
                yield ids[keep], vectors[keep]

    def vectors_for(self, info: SetInfo, window_ids: np.ndarray) -> np.ndarray:
        """The vectors of ``window_ids`` (in that order), touching only their segments' rows."""
        window_ids = np.asarray(window_ids, dtype=np.int64)
        out = np.empty((len(window_ids), info.dim), dtype=np.float32)
        if not len(window_ids):
            return out
        with self.connect() as con:
            con.register("wanted", pa.table({"id": window_ids, "at": np.arange(len(window_ids))}))
            rows = con.execute("SELECT w.segment_id, w.id, wanted.at FROM windows w JOIN wanted ON wanted.id = w.id "
                               "WHERE w.set_id = ? ORDER BY w.segment_id", [info.id]).fetchnumpy()
            files = dict(con.execute("SELECT id, file FROM segments WHERE set_id = ?", [info.id]).fetchall())
        if len(rows["id"]) != len(window_ids):
            raise StoreError("some requested windows are not in this set (the store changed); run the command again")
        for segment_id in np.unique(rows["segment_id"]):
            mine = rows["segment_id"] == segment_id
            ids, vectors = read_segment(self.sets_dir / info.name / files[int(segment_id)])
            order = np.argsort(ids, kind="stable")
            out[rows["at"][mine]] = vectors[order[np.searchsorted(ids, rows["id"][mine], sorter=order)]]
        return out

    def vectors(self, info: SetInfo) -> tuple[np.ndarray, np.ndarray]:
        """All live ``(ids, vectors)`` of a set in one array (for sets that fit in memory)."""
        parts = list(self.iter_vectors(info))
        if not parts:
            return np.zeros(0, np.int64), np.zeros((0, info.dim), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def live_windows(self, info: SetInfo) -> dict[str, np.ndarray]:
        """Live windows of a set with their media, as arrays: id, media_id, root, path, start_s, end_s."""
        with self.connect() as con:
            return con.execute(
                "SELECT w.id, w.media_id, r.path AS root, m.path, w.start_s, w.end_s FROM windows w "
                "JOIN media m ON m.id = w.media_id JOIN roots r ON r.id = m.root_id "
                "WHERE w.set_id = ? AND w.alive ORDER BY w.id", [info.id]).fetchnumpy()
