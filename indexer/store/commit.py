"""The commit protocol: the one way vectors enter the store, for builds and compaction alike.

Segment files are written durably under names only this writer uses; then one
catalog transaction records them with everything else that changes; if anything
fails before that transaction commits, exactly the files this writer wrote are
removed.  A reader therefore sees a commit whole or not at all, and no writer ever
touches another's file.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, ContextManager, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from audioscan.indexer.faults import crash_point
from audioscan.indexer.store import catalog, journal
from audioscan.indexer.store.annotations import journal_lock, start_journal
from audioscan.indexer.store.files import StoreFiles, segment_name
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow, SetInfo, utcnow
from audioscan.indexer.store.segments import write_segment
from audioscan.indexer.store.scalar import scalar


_MEDIA_COLUMNS = ("id, root_id, path, size, mtime_ns, fingerprint, duration, status, error, updated_at, retry, fps, "
                  "recorded_local, recorded_zone, recorded_source")

_RECORDED_COLUMNS = ("recorded_local", "recorded_zone", "recorded_source")


def _media_table(rows: Sequence[MediaRow]) -> pa.Table:
    """Media rows as a table of the catalog's column types, for one upsert.  A file listed twice
    keeps its last row (and the last frame rate known), as one upsert a row did."""
    latest: dict[int, MediaRow] = {}
    for row in rows:
        earlier = latest.pop(row.id, None)
        latest[row.id] = row if earlier is None or row.fps is not None else replace(row, fps=earlier.fps)
    rows = list(latest.values())
    now = utcnow()
    columns = {
        "id": pa.array([row.id for row in rows], pa.int64()),
        "root_id": pa.array([row.root_id for row in rows], pa.int32()),
        "path": pa.array([row.path for row in rows], pa.string()),
        "size": pa.array([row.size for row in rows], pa.int64()),
        "mtime_ns": pa.array([row.mtime_ns for row in rows], pa.int64()),
        "fingerprint": pa.array([row.fingerprint for row in rows], pa.string()),
        "duration": pa.array([row.duration for row in rows], pa.float64()),
        "status": pa.array([row.status for row in rows], pa.string()),
        "error": pa.array([row.error for row in rows], pa.string()),
        "updated_at": pa.array([now] * len(rows), pa.timestamp("us")),
        "retry": pa.array([row.retry for row in rows], pa.bool_()),
        "fps": pa.array([row.fps for row in rows], pa.float64()),
        "recorded_local": pa.array([row.recorded_local for row in rows], pa.timestamp("us")),
        "recorded_zone": pa.array([row.recorded_zone for row in rows], pa.string()),
        "recorded_source": pa.array([row.recorded_source for row in rows], pa.string()),
    }
    return pa.table(columns)


class Commits:
    """The commit protocol, mixed into ``Store``, which provides what is declared here."""

    path: Path
    files: StoreFiles
    token: str
    connect: Callable[[], ContextManager[duckdb.DuckDBPyConnection]]
    reserve_ids: Callable[[str, int], int]
    set_info: Callable[[int], SetInfo]
    _sets_by_id: dict[int, SetInfo]
    _require_write: Callable[[], None]

    def commit_segments(self, pieces: Sequence[tuple[SetInfo, np.ndarray, Sequence[np.ndarray]]],
                        apply: Callable[[duckdb.DuckDBPyConnection, list[int]], None]) -> None:
        """The commit protocol, for builds and compaction alike.

        Each ``(set, window ids, vector parts)`` piece becomes a new segment file written
        durably under this writer's own name; then one catalog transaction records the
        segments and runs ``apply(con, segment_ids)`` for everything else that changes.
        If anything fails before the transaction commits, the files written here - and
        only those - are removed, so the catalog never lists a file that is not whole
        and no other writer's file is ever touched.
        """
        self._require_write()
        written: list[Path] = []
        committed = False
        try:
            first = self.reserve_ids("segments", len(pieces)) if pieces else 0
            rows: list[list[object]] = []
            for offset, (info, ids, parts) in enumerate(pieces):
                segment_id = first + offset
                path = self.files.set_dir(info.name, create=True) / segment_name(self.token, segment_id)
                written.append(path)
                checksum = write_segment(path, ids, parts=parts, dtype=info.dtype)
                rows.append([segment_id, info.id, path.name, len(ids), utcnow(), checksum])
            crash_point("segment-written")
            with self.connect() as con, catalog.transaction(con):
                for row in rows:
                    con.execute("INSERT INTO segments (id, set_id, file, n_vectors, created_at, checksum) "
                                "VALUES (?, ?, ?, ?, ?, ?)", row)
                apply(con, [first + offset for offset in range(len(rows))])
            committed = True
        except BaseException:
            if not committed:
                for path in written:
                    self.files.remove(path)
                    self.files.remove(path.with_name(path.name + ".tmp"))
            raise

    def commit(self, change: Commit) -> None:
        """Make a build's ``change`` durable: segments first, then one catalog transaction."""
        self._require_write()
        if not change:
            return
        by_set: dict[int, list[FileVectors]] = {}
        for item in change.vectors:
            by_set.setdefault(item.set_id, []).append(item)
        pieces, window_tables, stats_rows = [], [], []
        first = self.reserve_ids("windows", change.windows()) if change.vectors else 0
        for set_id, items in by_set.items():
            count = sum(len(item.starts) for item in items)
            ids = np.arange(first, first + count, dtype=np.int64)
            first += count
            pieces.append((self.set_info(set_id), ids, [item.vectors for item in items]))
            window_tables.append({
                "id": ids,
                "media_id": np.concatenate([np.full(len(i.starts), i.media_id, np.int64) for i in items]),
                "set_id": np.full(count, set_id, np.int32),
                "start_s": np.concatenate([i.starts for i in items]).astype(np.float64),
                "end_s": np.concatenate([i.ends for i in items]).astype(np.float64),
                "channel": np.concatenate([i.channel_column() for i in items]),
            })
            for item in items:
                vec = item.vectors.astype(np.float64)
                stats_rows.append([item.media_id, set_id, len(item.starts),
                                   vec.mean(axis=0).astype(np.float32).tolist(),
                                   vec.std(axis=0).astype(np.float32).tolist()])

        def apply(con: duckdb.DuckDBPyConnection, segment_ids: list[int]) -> None:
            self._apply(con, change)  # old windows die before the new ones of the same files arrive
            for table, segment_id in zip(window_tables, segment_ids):
                table = pa.table({**table, "segment_id": np.full(len(table["id"]), segment_id, np.int32),
                                  "alive": np.ones(len(table["id"]), dtype=bool)})
                con.register("new_windows", table)
                con.execute("INSERT INTO windows (id, media_id, set_id, start_s, end_s, channel, segment_id, alive) "
                            "SELECT id, media_id, set_id, start_s, end_s, channel, segment_id, alive FROM new_windows")
                con.unregister("new_windows")
            if stats_rows:
                con.executemany("INSERT INTO media_sets VALUES (?, ?, ?, ?, ?)", stats_rows)

        self.commit_segments(pieces, apply)
        crash_point("committed")

    @staticmethod
    def _apply(con: duckdb.DuckDBPyConnection, change: Commit) -> None:
        """The catalog side of a build's commit, before its new windows: media rows, retired
        windows, files found not to be media."""
        if change.media:  # one statement for all of them: an upsert a row costs 4 ms
            con.register("new_media", _media_table(change.media))
            con.execute(
                f"INSERT INTO media ({_MEDIA_COLUMNS}) SELECT {_MEDIA_COLUMNS} FROM new_media "
                "ON CONFLICT (id) DO UPDATE SET "
                "root_id = excluded.root_id, path = excluded.path, size = excluded.size, "
                "mtime_ns = excluded.mtime_ns, fingerprint = excluded.fingerprint, duration = excluded.duration, "
                "status = excluded.status, error = excluded.error, updated_at = excluded.updated_at, "
                "retry = excluded.retry, fps = coalesce(excluded.fps, media.fps), "
                # a row that did not look for a start (a failure, a move's bookkeeping) keeps the one found before
                + ", ".join(f"{column} = CASE WHEN excluded.recorded_source IS NULL THEN media.{column} "
                            f"ELSE excluded.{column} END" for column in _RECORDED_COLUMNS))
            con.unregister("new_media")
        for media_id, set_id in change.retire:
            where, args = ("media_id = ?", [media_id]) if set_id is None else (
                "media_id = ? AND set_id = ?", [media_id, set_id])
            con.execute(f"UPDATE windows SET alive = false WHERE alive AND {where}", args)
            con.execute(f"DELETE FROM media_sets WHERE {where}", args)
        if change.media:  # a file committed (indexed or failed) is no longer undone work of a build
            con.executemany("DELETE FROM planned WHERE root_id = ? AND path = ?",
                            [[row.root_id, row.path] for row in change.media])
        for root_id, path, size, mtime in change.non_media:
            con.execute("INSERT OR REPLACE INTO non_media VALUES (?, ?, ?, ?)", [root_id, path, size, mtime])

    @staticmethod
    def retire_files(con: duckdb.DuckDBPyConnection, set_id: int, *, files: Sequence[str]) -> None:
        """Inside a transaction: files no longer listed, kept for readers until the grace period ends."""
        if files:
            name = scalar(con, "SELECT name FROM sets WHERE id = ?", params=[set_id])
            con.executemany("INSERT OR REPLACE INTO retired_files (set_id, file, retired_at, set_name) "
                            "VALUES (?, ?, ?, ?)", [[set_id, file, utcnow(), name] for file in files])

    def remove_set(self, info: SetInfo) -> int:
        """Drop an embedding set: its windows, statistics, ANN index and the classifiers trained on
        it.  Its files are retired (deleted after the grace period).  Returns the classifiers dropped."""
        self._require_write()
        with journal_lock(self.path), self.connect() as con, catalog.transaction(con):
            start_journal(self.path, con)
            files = [r[0] for r in con.execute("SELECT file FROM segments WHERE set_id = ? UNION ALL "
                                               "SELECT file FROM ann_indexes WHERE set_id = ?",
                                               [info.id, info.id]).fetchall()]
            self.retire_files(con, info.id, files=files)
            dropped = scalar(con, "SELECT count(*) FROM classifiers WHERE set_id = ?", params=[info.id])
            for table in ("windows", "media_sets", "segments", "ann_indexes", "classifiers"):
                con.execute(f"DELETE FROM {table} WHERE set_id = ?", [info.id])
            con.execute("DELETE FROM sets WHERE id = ?", [info.id])
            journal.append(self.path, {"op": "remove_set", "set": info.name})
        self._sets_by_id = {}  # a later set may take this id
        return dropped
