"""The store: a DuckDB catalog plus immutable FAISS segments, changed one commit at a time.

``Store.open(path, write=True)`` refuses a folder that holds something other than a
store, takes the writer lock, brings the catalog schema up to date, registers this
writer's token, and removes what earlier writers left behind (see
:meth:`Store.collect_garbage`).  Every change of vectors - a build's commit or a
compaction - goes through one protocol, :meth:`Store.commit_segments`: segment files
are written durably under names only this writer uses, then one catalog transaction
records them with whatever else changes, and on failure exactly the files this
writer wrote are removed.  Ids come from counters taken inside catalog
transactions, so even two writers that both think they hold the lock never share
an id or a file name.

Readers take one :class:`Snapshot` per question; see ``indexer.store.snapshot``.  A process
keeps the last one of each set until the next commit (``indexer.store.remembered``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from audioscan.indexer.errors import StoreError, StoreNotFoundError
from audioscan.indexer.store import catalog, journal, salvage
from audioscan.indexer.store.annotations import Annotations, journal_lock, start_journal
from audioscan.indexer.store.backup import GOOD_COPY, GOOD_RECORD, keep_good_copy
from audioscan.indexer.store.commit import Commits
from audioscan.indexer.store.garbage import Garbage
from audioscan.indexer.store.files import StoreFiles, valid_set_name
from audioscan.indexer.store.integrity import damage
from audioscan.indexer.store.lock import HOLDER_FILE, LOCK_FILE, WriterLock
from audioscan.indexer.store.places import Places
from audioscan.indexer.store.reading import Reading
from audioscan.indexer.store.catalog import SET_COLUMNS
from audioscan.indexer.store.records import MIX, SPLIT, MediaRow, SetInfo, utcnow
from audioscan.indexer.store.remembered import REMEMBERED
from audioscan.indexer.store.scalar import records, scalar

CATALOG_FILE = catalog.CATALOG_FILE
# What an empty store folder may hold before its catalog exists (a crash right after creating it).
_STORE_NAMES = {CATALOG_FILE, CATALOG_FILE + ".wal", CATALOG_FILE + ".tmp", CATALOG_FILE + ".rebuilt.tmp",
                LOCK_FILE, HOLDER_FILE, "sets", GOOD_COPY, GOOD_COPY + ".tmp", GOOD_RECORD, journal.JOURNAL_FILE,
                journal.JOURNAL_FILE + ".tmp", journal.JOURNAL_LOCK}
# Ids a writer takes from the catalog's counters at a time, so that its commits need no
# connection of their own to number windows, segment files and media (each connection costs
# 15-25 ms, four of them a commit before); ids a writer leaves unused are never handed out.
_ID_BLOCKS = {"windows": 1 << 16, "segments": 64, "media": 256}


# The media table's columns a MediaRow holds, named as its fields.
_MEDIA_FIELDS = ("id, root_id, path, size, mtime_ns, fingerprint, duration, status, error, retry, fps, recorded_local, "
                 "recorded_zone, recorded_source")


class Store(Annotations, Places, Commits, Garbage, Reading):
    """A store folder, opened in one of three modes (see :meth:`open`)."""

    def __init__(self, path: Path, write: bool, *, annotate: bool = False) -> None:
        self.path = Path(path)
        self.salvaged: salvage.Salvaged | None = None  # what opening for repair made of a damaged catalog
        self.write = write
        self.annotate = annotate or write
        self.catalog_path = self.path / CATALOG_FILE
        self.files = StoreFiles(self.path)
        self.sets_dir = self.files.sets_dir
        self.token = secrets.token_hex(4)
        self._lock: WriterLock | None = None
        self._id_blocks: dict[str, tuple[int, int]] = {}  # name -> (next id, end of the block)
        self._sets_by_id: dict[int, SetInfo] = {}

    # ----------------------------------------------------------------- opening
    @staticmethod
    def exists(path: Path) -> bool:
        """Whether ``path`` holds a store's catalog (a build has started there)."""
        return (Path(path) / CATALOG_FILE).exists()

    @staticmethod
    def lost_catalog(path: Path) -> bool:
        """Whether the catalog is gone but the store's good copy or journal is there to rebuild it from."""
        path = Path(path)
        return not (path / CATALOG_FILE).exists() and ((path / GOOD_COPY).exists() or journal.exists(path))

    def _refuse_lost_catalog(self) -> None:
        if Store.lost_catalog(self.path):
            raise StoreError(f"the catalog of the store at {self.path} is missing, but the copy kept after the last "
                             "change and the journal of labels and detectors are there: run 'audioscan index "
                             "repair' to rebuild it")

    @staticmethod
    def generation(path: Path) -> tuple:
        """A token that changes whenever a transaction commits to the store at ``path``.

        DuckDB appends every commit to the catalog's write-ahead log and folds the log into
        the file at checkpoints, so the two files' sizes and times move with every commit.
        Reading them costs two ``stat`` calls and no catalog connection (which costs tens of
        milliseconds), so a long-running reader can ask before every question.  A checkpoint
        alone may move the token too: that costs a reader one needless refresh, never a stale one.
        """
        token: list[tuple[int, int, int] | None] = []
        for name in (CATALOG_FILE, CATALOG_FILE + ".wal"):
            try:
                found = (Path(path) / name).stat()
                token.append((found.st_mtime_ns, found.st_size, found.st_ino))
            except FileNotFoundError:
                token.append(None)
        return tuple(token)

    @classmethod
    @contextmanager
    def open(cls, path: Path, write: bool = False, *, annotate: bool = False, salvage: bool = False
             ) -> Iterator["Store"]:
        """The store at ``path``: a reader (the default) changes nothing; ``annotate=True`` may
        also change labels and detectors, without the writer lock, so people label while a
        long build runs; ``write=True`` holds the writer lock and may change everything, and with
        ``salvage=True`` first rebuilds a damaged or missing catalog (``index repair``; see
        ``salvage``).  (A reader that finds an older catalog upgrades it once, under the writer lock.)"""
        store = cls(path, write or salvage, annotate=annotate)
        if write or salvage:
            store._open_writer(salvage)
        else:
            store._open_reader()
        try:
            yield store
            if store._lock is not None:
                keep_good_copy(store.path)  # a change that succeeded: the way back moves up to it
        finally:
            if store._lock is not None:
                store._close_writer()

    def _refuse_foreign_folder(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise StoreError(f"{self.path} is a file, not a store folder; give `store` a folder")
        if self.catalog_path.exists() or not self.path.exists() or Store.lost_catalog(self.path):
            return
        others = sorted(p.name for p in self.path.iterdir() if p.name not in _STORE_NAMES)
        if others or any((self.sets_dir).glob("*/*")):
            raise StoreError(f"{self.path} is a folder of other files ({', '.join(others[:3]) or 'sets/'}...), "
                             "not an audioscan store; give `store` an empty or new folder")

    def _open_writer(self, salvaging: bool = False) -> None:
        if not salvaging:
            self._refuse_lost_catalog()
        self._refuse_foreign_folder()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store folder {self.path} ({err.strerror or err})") from None
        self._lock = WriterLock(self.path)
        self._lock.acquire()
        try:
            with journal_lock(self.path):
                if salvaging and damage(self.path) is not None:
                    self.salvaged = salvage.rebuild(self.path)
                with self.connect() as con:
                    catalog.migrate(con, self.catalog_path)
                    con.execute("INSERT INTO writers VALUES (?, ?, ?, ?, NULL)",
                                [self.token, os.getpid(), socket.gethostname(), utcnow()])
                    start_journal(self.path, con)
            for info in self.sets():
                self.files.set_dir(info.name, create=True)
            self.collect_garbage()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise

    def _close_writer(self) -> None:
        try:
            with self.connect() as con:
                con.execute("UPDATE writers SET closed_at = ? WHERE token = ?", [utcnow(), self.token])
        except (StoreError, duckdb.Error):
            pass  # the store stays consistent; this writer's leftovers age out instead
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()

    def _open_reader(self) -> None:
        self._refuse_lost_catalog()
        if not self.catalog_path.exists():
            raise StoreNotFoundError(f"there is no audioscan store at {self.path}; "
                             "run 'audioscan index build FOLDER' first, or give `store`")
        found = REMEMBERED.answer(self.catalog_path, Store.generation(self.path), question="version", ask=self._version)
        catalog.check_version(found, self.catalog_path)
        if found < catalog.SCHEMA_VERSION:
            # An older catalog is migrated once, under the writer lock, then read as usual.
            with Store.open(self.path, write=True):
                pass

    def _version(self) -> int:
        with self.connect() as con:
            return catalog.version(con)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived catalog connection (read-only unless this store writes)."""
        with catalog.connect(self.catalog_path, read_only=not self.write) as con:
            yield con

    def _require_write(self) -> None:
        if not self.write:
            raise RuntimeError("this Store was opened read-only")

    # ----------------------------------------------------------------- ids
    @staticmethod
    def _take_ids(con: duckdb.DuckDBPyConnection, name: str, count: int) -> int:
        """The first of ``count`` fresh ids of ``name``, inside the caller's transaction.

        The only way ids of windows, segments and media are made: a counter in the
        catalog, so two writers can never be handed the same id.
        """
        first = scalar(con, "SELECT next FROM id_counters WHERE name = ?", params=[name])
        con.execute("UPDATE id_counters SET next = ? WHERE name = ?", [first + count, name])
        return first

    def reserve_ids(self, name: str, count: int) -> int:
        """The first of ``count`` consecutive fresh ids of ``name``, from this writer's block.

        Ids stay increasing in commit order (a new block starts above every id handed out
        before), which is what a snapshot's refresh relies on."""
        self._require_write()
        first, end = self._id_blocks.get(name, (0, 0))
        if first + count > end:
            size = max(count, _ID_BLOCKS[name])
            with self.connect() as con, catalog.transaction(con):
                first = self._take_ids(con, name, size)
            end = first + size
        self._id_blocks[name] = (first + count, end)
        return first

    def new_media_id(self) -> int:
        return self.reserve_ids("media", 1)

    # ----------------------------------------------------------------- sets and roots
    def sets(self) -> list[SetInfo]:
        def ask() -> list[SetInfo]:
            with self.connect() as con:
                return records(SetInfo, con,
                               sql="SELECT id, name, model, weights_id, window_s AS \"window\", hop_s AS hop, "
                               "sample_rate, dim, dtype, channels FROM sets ORDER BY id")

        return list(REMEMBERED.answer(self.catalog_path, Store.generation(self.path), question="sets", ask=ask))

    def set_info(self, set_id: int) -> SetInfo:
        """A set by id, for a writer's commits: kept between them, as only the writer holding
        the lock adds or removes sets (and :meth:`ensure_set` and ``remove_set`` forget them)."""
        if set_id not in self._sets_by_id:
            self._sets_by_id = {info.id: info for info in self.sets()}
        return self._sets_by_id[set_id]

    def ensure_set(self, model: str, weights_id: str, *, window: float, hop: float, sample_rate: int,
                   dim: int, dtype: str = "fp32", name: str | None = None, channels: str = MIX) -> SetInfo:
        """The set for exactly these parameters, created on first use (named ``name`` when given,
        else after its model and cut; a set of each channel apart is another set, ``-split`` after its name)."""
        self._require_write()
        for info in self.sets():
            if (info.model, info.weights_id, info.window, info.hop, info.sample_rate, info.channels) == (
                    model, weights_id, window, hop, sample_rate, channels):
                if info.dim != dim:
                    raise StoreError(f"set {info.name} holds {info.dim}-d vectors but {model} now gives {dim}-d")
                return info
        if name is not None:
            if not valid_set_name(name) or name in {info.name for info in self.sets()}:
                raise StoreError(f"'{name}' cannot name a new set: it must be a plain folder name not taken by "
                                 "another set")
        else:
            name = f"{model}-w{window:g}-h{hop:g}" + ("-split" if channels == SPLIT else "")
            if name in {info.name for info in self.sets()}:  # same model and cut, other weights: keep them apart
                name = f"{name}-{weights_id if valid_set_name(weights_id) and len(weights_id) <= 16 else weights_id[:8]}"
        with self.connect() as con, catalog.transaction(con):
            set_id = scalar(con, "SELECT coalesce(max(id), 0) + 1 FROM sets")
            info = SetInfo(set_id, name, model=model, weights_id=weights_id, window=window, hop=hop,
                           sample_rate=sample_rate, dim=dim, dtype=dtype, channels=channels)
            con.execute(f"INSERT INTO sets ({SET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [info.id, info.name, info.model, info.weights_id, info.window, info.hop,
                         info.sample_rate, info.dim, info.dtype, utcnow(), info.channels])
        self._sets_by_id = {}
        self.files.set_dir(info.name, create=True)
        return info

    def record_dtype(self, con: duckdb.DuckDBPyConnection, info: SetInfo, *, dtype: str) -> None:
        """Inside a commit's transaction: the set's vectors are kept as ``dtype`` from now on."""
        con.execute("UPDATE sets SET dtype = ? WHERE id = ?", [dtype, info.id])
        self._sets_by_id = {}

    def find_set(self, name: str | None = None) -> SetInfo:
        """A set by set name or model name; without a name, the store's only set."""
        sets = self.sets()
        if not sets:
            raise StoreError(f"the store at {self.path} holds no vectors yet; run 'audioscan index build FOLDER'")
        if name is None:
            if len(sets) == 1:
                return sets[0]
            raise StoreError("the store holds several embedding sets (" + ", ".join(s.name for s in sets)
                             + "); choose one with `model`")
        matches = [s for s in sets if s.name == name] or [s for s in sets if s.model == name.upper()]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StoreNotFoundError(f"no embedding set for '{name}' in this store; it has: "
                             + ", ".join(s.name for s in sets))
        raise StoreError(f"'{name}' matches several sets (" + ", ".join(s.name for s in matches)
                         + "); give the full set name")

    def ensure_root(self, root: Path) -> int:
        self._require_write()
        text = str(root)
        with self.connect() as con, catalog.transaction(con):
            row = con.execute("SELECT id FROM roots WHERE path = ?", [text]).fetchone()
            if row is not None:
                return int(row[0])
            root_id = int(scalar(con, "SELECT coalesce(max(id), 0) + 1 FROM roots"))
            con.execute("INSERT INTO roots VALUES (?, ?, ?)", [root_id, text, utcnow()])
        return root_id

    def roots(self) -> dict[int, Path]:
        """Every folder ever indexed, by id."""
        with self.connect() as con:
            return {rid: Path(path) for rid, path in con.execute("SELECT id, path FROM roots").fetchall()}

    def plan_files(self, root_id: int, scope: str, *, paths: list[str]) -> None:
        """Record the files a build of ``scope`` (a subfolder of the root, or all of it) is about
        to embed, replacing what an earlier build of that scope left there."""
        self._require_write()
        with self.connect() as con, catalog.transaction(con):
            con.execute("DELETE FROM planned WHERE root_id = ? AND starts_with(path, ?)", [root_id, scope])
            if paths:
                con.executemany("INSERT OR IGNORE INTO planned VALUES (?, ?)", [[root_id, path] for path in paths])

    def adopt_root(self, child_id: int, parent_id: int, *, prefix: str) -> None:
        """Fold a root into one that contains it (its files keep their ids, vectors and labels)."""
        self._require_write()
        with self.connect() as con, catalog.transaction(con):
            con.execute("UPDATE media SET root_id = ?, path = ? || path WHERE root_id = ?", [parent_id, prefix,
                                                                                             child_id])
            con.execute("UPDATE non_media SET root_id = ?, path = ? || path WHERE root_id = ?",
                        [parent_id, prefix, child_id])
            con.execute("UPDATE planned SET root_id = ?, path = ? || path WHERE root_id = ?",
                        [parent_id, prefix, child_id])
            con.execute("DELETE FROM roots WHERE id = ?", [child_id])

    def forget(self, root_id: int, scope: str = "") -> int:
        """Drop the windows of every file of a root (or of its subfolder ``scope``), on purpose.

        The files' rows stay, marked missing, so their labels are kept and reported.
        Returns how many files were forgotten.
        """
        self._require_write()
        with self.connect() as con, catalog.transaction(con):
            ids = [r[0] for r in con.execute("SELECT id FROM media WHERE root_id = ? AND starts_with(path, ?) "
                                             "AND status <> 'missing'", [root_id, scope]).fetchall()]
            con.execute("UPDATE windows SET alive = false WHERE alive AND list_contains(?, media_id)", [ids])
            con.execute("DELETE FROM media_sets WHERE list_contains(?, media_id)", [ids])
            con.execute("DELETE FROM planned WHERE root_id = ? AND starts_with(path, ?)", [root_id, scope])
            con.execute("UPDATE media SET status = 'missing', error = 'forgotten with index forget', "
                        "updated_at = ? WHERE list_contains(?, id)", [utcnow(), ids])
        return len(ids)

    # ----------------------------------------------------------------- media
    def media_elsewhere(self, root_id: int) -> list[tuple[MediaRow, Path]]:
        """Indexed files of other roots (with their root folder): where a renamed or re-mounted
        root's files may have come from."""
        with self.connect() as con:
            rows = records(MediaRow, con, sql=f"SELECT {_MEDIA_FIELDS} FROM media WHERE root_id <> ? AND status IN "
                           "('ok', 'unavailable') AND fingerprint IS NOT NULL", params=[root_id])
            roots = dict(con.execute("SELECT id, path FROM roots").fetchall())
        return [(row, Path(roots[row.root_id])) for row in rows]

    def embedded_sets_of(self, media_id: int) -> set[int]:
        with self.connect() as con:
            return {r[0] for r in con.execute("SELECT set_id FROM media_sets WHERE media_id = ?",
                                              [media_id]).fetchall()}

    def media_of_root(self, root_id: int) -> dict[str, MediaRow]:
        with self.connect() as con:
            rows = records(MediaRow, con, sql=f"SELECT {_MEDIA_FIELDS} FROM media WHERE root_id = ?", params=[root_id])
        return {row.path: row for row in rows}

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

    def record_run(self, command: str, started: dt.datetime, *, stats: dict) -> None:
        self._require_write()
        with self.connect() as con, catalog.transaction(con):
            run_id = scalar(con, "SELECT coalesce(max(id), 0) + 1 FROM runs")
            con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)", [run_id, command, started, utcnow(),
                                                                   json.dumps(stats)])
