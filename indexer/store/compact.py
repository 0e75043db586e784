"""Compaction: merging small segments and dropping the vectors of dead windows.

Every commit adds one small segment per set, and every re-embed or delete leaves
dead vectors behind.  Compaction rewrites only what is worth it - segments much
smaller than the target size, and segments that are mostly dead - streaming the
live vectors into new segments of at most ``TARGET_BYTES``, so memory stays
bounded however large the set.  It commits through the store's one commit
protocol; the replaced files are retired, not deleted, so a reader that took its
snapshot a moment earlier still finds them.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, replace

import duckdb
import numpy as np
import pyarrow as pa

from audioscan.indexer.store.records import SetInfo
from audioscan.indexer.store.segments import read_segment
from audioscan.indexer.store.store import Store

TARGET_BYTES = 512 << 20
SMALL_FRACTION = 0.25
DEAD_FRACTION = 0.3
AUTO_SMALL_SEGMENTS = 8


@dataclass(frozen=True)
class CompactReport:
    set_name: str
    segments_before: int
    _: KW_ONLY
    segments_after: int
    vectors_dropped: int


def _segment_health(store: Store, info: SetInfo) -> list[tuple[int, str, int, int]]:
    """(id, file, vectors in file, live windows) per segment."""
    with store.connect() as con:
        return con.execute(
            "SELECT g.id, g.file, g.n_vectors, count(w.id) FILTER (WHERE w.alive) FROM segments g "
            "LEFT JOIN windows w ON w.segment_id = g.id WHERE g.set_id = ? GROUP BY ALL ORDER BY g.id",
            [info.id]).fetchall()


def _chosen(info: SetInfo, health: list[tuple[int, str, int, int]], force: bool) -> list[tuple[int, str, int, int]]:
    target = max(1, TARGET_BYTES // (4 * info.dim))
    small = [h for h in health if h[3] < target * SMALL_FRACTION]
    dead = [h for h in health if h[2] and (h[2] - h[3]) / h[2] > DEAD_FRACTION]
    if force:
        return [h for h in health if h[3] < target or h[2] != h[3]]
    chosen = {h[0]: h for h in dead}
    if len(small) > AUTO_SMALL_SEGMENTS:
        chosen.update({h[0]: h for h in small})
    return sorted(chosen.values())


def compact_set(store: Store, info: SetInfo, *, force: bool = False, dtype: str | None = None) -> CompactReport:
    """Rewrite the set's small or mostly-dead segments; returns what changed.  With a ``dtype``
    (stored name) other than the set's, every segment is rewritten in it and the set records it in
    the same transaction: a crash leaves the set whole in its old dtype or whole in the new."""
    health = _segment_health(store, info)
    converting = dtype is not None and dtype != info.dtype
    chosen = health if converting else _chosen(info, health, force)
    if not converting and (not chosen or (len(chosen) == 1 and chosen[0][2] == chosen[0][3])):
        return CompactReport(info.name, len(health), segments_after=len(health), vectors_dropped=0)
    if converting:
        info = replace(info, dtype=str(dtype))
    target = max(1, TARGET_BYTES // (4 * info.dim))
    live = store.snapshot(info).ids
    pieces: list[tuple[SetInfo, np.ndarray, list[np.ndarray]]] = []
    ids_buf: list[np.ndarray] = []
    vec_buf: list[np.ndarray] = []
    dropped = 0
    for _, file, count, _ in chosen:
        ids, vectors = read_segment(store.files.file(info.name, file))
        keep = np.isin(ids, live, assume_unique=True)
        kept = int(keep.sum())
        dropped += count - kept
        whole = kept == len(ids)  # a live segment is written from its own pages, not copied first
        ids_buf.append(ids if whole else ids[keep])
        vec_buf.append(vectors if whole else vectors[keep])
        if sum(len(i) for i in ids_buf) >= target:
            pieces.append((info, np.concatenate(ids_buf), vec_buf))
            ids_buf, vec_buf = [], []
    if ids_buf and sum(len(i) for i in ids_buf):
        pieces.append((info, np.concatenate(ids_buf), vec_buf))
    old_ids = [h[0] for h in chosen]

    def apply(con: duckdb.DuckDBPyConnection, segment_ids: list[int]) -> None:
        for (_, ids, _), segment_id in zip(pieces, segment_ids):
            con.register("moved", pa.table({"id": ids, "segment_id": np.full(len(ids), segment_id, np.int32)}))
            con.execute("UPDATE windows SET segment_id = moved.segment_id FROM moved WHERE windows.id = moved.id")
            con.unregister("moved")
        con.execute("DELETE FROM windows WHERE NOT alive AND list_contains(?, segment_id)", [old_ids])
        con.execute("DELETE FROM segments WHERE list_contains(?, id)", [old_ids])
        store.retire_files(con, info.id, files=[file for _, file, _, _ in chosen])
        if converting:
            store.record_dtype(con, info, dtype=info.dtype)

    store.commit_segments(pieces, apply)
    return CompactReport(info.name, len(health), segments_after=len(health) - len(chosen) + len(pieces),
                         vectors_dropped=dropped)
