"""Reading a set as of one commit: the store's snapshots, and the media rows they carry.

Mixed into ``Store`` (which provides what is declared here).  A snapshot is read in one
catalog transaction; the process keeps the last one of each set (``remembered``) and,
after a commit, reads only what changed since it (see :meth:`Reading.snapshot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, ContextManager

import duckdb
import numpy as np

from audioscan.indexer.media.recorded import RecordingStart
from audioscan.indexer.store import catalog
from audioscan.indexer.store.files import StoreFiles
from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.remembered import REMEMBERED
from audioscan.indexer.store.sites import SiteFolders
from audioscan.indexer.store.snapshot import AnnPart, FileStats, MediaInfo, SegmentRow, Snapshot
from audioscan.indexer.store.scalar import records, scalar

# The catalog's window columns: the Snapshot field each fills, and its type there.
_WINDOW_COLUMNS = {"id": ("ids", np.int64), "media_id": ("media_ids", np.int64), "start_s": ("starts", np.float64),
                   "end_s": ("ends", np.float64), "segment_id": ("segment_of", np.int64),
                   "channel": ("channels", np.int16)}


class Reading:
    """Snapshots and media rows, mixed into ``Store``."""

    path: Path
    catalog_path: Path
    files: StoreFiles
    connect: Callable[[], ContextManager[duckdb.DuckDBPyConnection]]
    generation: Callable[[Path], tuple]

    @staticmethod
    def _media(con: duckdb.DuckDBPyConnection) -> dict[int, MediaInfo]:
        """Every media file, with its start (a given one before a found one) and its site."""
        rows = con.execute(
            "SELECT m.id, r.path, m.path, m.duration, m.status, m.fps, coalesce(g.local, m.recorded_local), "
            "CASE WHEN g.media_id IS NULL THEN m.recorded_zone ELSE g.zone END, "
            "CASE WHEN g.media_id IS NULL THEN m.recorded_source ELSE 'user' END, coalesce(g.fold, 0) "
            "FROM media m JOIN roots r ON r.id = m.root_id LEFT JOIN given_times g ON g.media_id = m.id").fetchall()
        site_of = SiteFolders(con.execute("SELECT folder, site FROM site_folders").fetchall())
        site_zones = dict(con.execute("SELECT name, zone FROM sites WHERE zone IS NOT NULL").fetchall())
        media = {}
        for media_id, root, rel, duration, status, fps, local, zone, source, fold in rows:
            site = site_of(str(Path(root) / rel))
            # A local time of no known zone (a Song Meter's name) is in the zone its site's clocks keep.
            start = RecordingStart(local.replace(fold=fold), zone or site_zones.get(site), source) \
                if local is not None else None
            media[media_id] = MediaInfo(media_id, root, rel=rel, duration=duration, status=status, fps=fps,
                                        recorded=start, site=site)
        return media

    def media(self) -> dict[int, MediaInfo]:
        """Every media file the store knows, by id (ok, failed or missing)."""
        with self.connect() as con:
            return self._media(con)

    def snapshot(self, info: SetInfo, stats: bool = False) -> Snapshot:
        """The set as of the last commit, read in one catalog transaction (see ``snapshot``).

        The process keeps the last snapshot of each set (``indexer.store.remembered``): while
        nothing was committed it is given again, at the cost of two ``stat`` calls; after a
        commit it is brought up to date with the windows committed since, so the cost grows
        with what changed, not with the set.  A compaction (segments gone) reads it whole.
        """
        def take(last: Snapshot | None) -> Snapshot:
            with self.connect() as con, catalog.transaction(con):
                return self._snapshot_since(con, info, stats, last)

        return REMEMBERED.snapshot(self.catalog_path, self.generation(self.path), key=(info, stats), take=take)

    def _snapshot_since(self, con: duckdb.DuckDBPyConnection, info: SetInfo, stats: bool,
                        last: Snapshot | None) -> Snapshot:
        segments = records(SegmentRow, con, sql="SELECT id, file, n_vectors, checksum FROM segments WHERE set_id = ? "
                           "ORDER BY id", params=[info.id])
        ann = {part: AnnPart(file, kind, signature) for part, file, kind, signature in con.execute(
            "SELECT part, file, kind, signature FROM ann_indexes WHERE set_id = ?", [info.id]).fetchall()}
        media = self._media(con)
        columns = f"SELECT {', '.join(_WINDOW_COLUMNS)} FROM windows WHERE set_id = ? AND alive"
        if last is None or not {s.id for s in last.segments} <= {s.id for s in segments}:
            rows = con.execute(f"{columns} ORDER BY id", [info.id]).fetchnumpy()
            windows = {field: rows[column].astype(dtype) for column, (field, dtype) in _WINDOW_COLUMNS.items()}
            file_stats = self._file_stats(con, info) if stats else None
            return Snapshot(info=info, files=self.files, **windows, segments=segments, media=media, ann=ann,
                            stats=file_stats)
        # Windows are never revived and new ones get higher ids: what changed since ``last`` is
        # the windows above its highest id, and those of its windows that died (rare: a file
        # changed or went away), found only when the count of its ids still alive fell.
        newest = int(last.ids[-1]) if len(last.ids) else -1
        added = con.execute(f"{columns} AND id > ? ORDER BY id", [info.id, newest]).fetchnumpy()
        alive = scalar(con, "SELECT count(*) FROM windows WHERE set_id = ? AND alive AND id <= ?",
                       params=[info.id, newest])
        keep = np.ones(len(last.ids), dtype=bool)
        if alive != len(last.ids):
            still = con.execute("SELECT id FROM windows WHERE set_id = ? AND alive AND id <= ?",
                                [info.id, newest]).fetchnumpy()["id"]
            keep = np.isin(last.ids, still)
        windows = {field: np.concatenate([getattr(last, field)[keep], added[column].astype(dtype)])
                   for column, (field, dtype) in _WINDOW_COLUMNS.items()}
        file_stats = None
        if stats:
            changed = np.unique(np.concatenate([added["media_id"].astype(np.int64), last.media_ids[~keep]]))
            file_stats = (self._file_stats(con, info) if last.stats is None
                          else self._stats_updated(con, info, last.stats, changed))
        return Snapshot(info=info, files=self.files, **windows, segments=segments, media=media, ann=ann,
                        stats=file_stats)

    def _stats_updated(self, con: duckdb.DuckDBPyConnection, info: SetInfo, kept: FileStats,
                       changed: np.ndarray) -> FileStats:
        """``kept`` with the rows of the ``changed`` media files read again (a file's statistics
        change only with its windows)."""
        if not len(changed):
            return kept
        fresh = self._file_stats(con, info, changed)
        stay = ~np.isin(kept.media_ids, changed)
        media_ids = np.concatenate([kept.media_ids[stay], fresh.media_ids])
        order = np.argsort(media_ids, kind="stable")
        return FileStats(media_ids[order], np.concatenate([kept.n_windows[stay], fresh.n_windows])[order],
                         means=np.concatenate([kept.means[stay], fresh.means])[order],
                         stds=np.concatenate([kept.stds[stay], fresh.stds])[order])

    @staticmethod
    def _file_stats(con: duckdb.DuckDBPyConnection, info: SetInfo, media_ids: np.ndarray | None = None) -> FileStats:
        """Per-file statistics of the set (of ``media_ids`` only, when given), sorted by media id."""
        only = "" if media_ids is None else "AND list_contains(?, media_id) "
        args = [info.id] if media_ids is None else [info.id, media_ids.tolist()]
        rows = con.execute("SELECT media_id, n_windows, mean, std FROM media_sets WHERE set_id = ? "
                           f"{only}ORDER BY media_id", args).fetchnumpy()
        empty = np.zeros((0, info.dim), dtype=np.float32)
        return FileStats(rows["media_id"].astype(np.int64), rows["n_windows"].astype(np.int64),
                         means=np.stack(list(rows["mean"])).astype(np.float32) if len(rows["mean"]) else empty,
                         stds=np.stack(list(rows["std"])).astype(np.float32) if len(rows["std"]) else empty)
