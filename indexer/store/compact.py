"""Compaction: merging small segments and dropping the vectors of dead windows.

Every commit adds one small segment per set, and every re-embed or delete leaves
dead vectors behind.  Compaction rewrites only what is worth it - segments much
smaller than the target size, and segments that are mostly dead - streaming the
live vectors into new segments of at most ``TARGET_BYTES``, so memory stays
bounded however large the set.  The new segments and the re-pointed windows are
committed in one transaction; the old files are deleted only after it (a crash in
between leaves unlisted files, which the next writer removes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from audioscan.indexer.store.records import SetInfo, utcnow
from audioscan.indexer.store.segments import read_segment, segment_name, write_segment
from audioscan.indexer.store.store import Store

TARGET_BYTES = 512 << 20
SMALL_FRACTION = 0.25
DEAD_FRACTION = 0.3
AUTO_SMALL_SEGMENTS = 8


@dataclass
class CompactReport:
    set_name: str
    segments_before: int
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


def compact_set(store: Store, info: SetInfo, force: bool = False) -> CompactReport:
    """Rewrite the set's small or mostly-dead segments; returns what changed."""
    health = _segment_health(store, info)
    chosen = _chosen(info, health, force)
    if not chosen or (len(chosen) == 1 and chosen[0][2] == chosen[0][3]):
        return CompactReport(info.name, len(health), len(health), 0)
    target = max(1, TARGET_BYTES // (4 * info.dim))
    with store.connect() as con:
        live = con.execute("SELECT id FROM windows WHERE set_id = ? AND alive", [info.id]).fetchnumpy()["id"]
    new_segments, moves, written = [], [], []
    ids_buf: list[np.ndarray] = []
    vec_buf: list[np.ndarray] = []
    buffered = 0

    def flush() -> None:
        nonlocal ids_buf, vec_buf, buffered
        if not buffered:
            return
        segment_id = store.allocate_id("segments")
        path = store.sets_dir / info.name / segment_name(segment_id)
        ids = np.concatenate(ids_buf)
        write_segment(path, ids, np.concatenate(vec_buf), info.dtype)
        written.append(path)
        new_segments.append([segment_id, info.id, path.name, len(ids), utcnow()])
        moves.append(pa.table({"id": ids, "segment_id": np.full(len(ids), segment_id, np.int32)}))
        ids_buf, vec_buf, buffered = [], [], 0

    dropped = 0
    for _, file, count, _ in chosen:
        ids, vectors = read_segment(store.sets_dir / info.name / file)
        keep = np.isin(ids, live)
        dropped += int(count - keep.sum())
        ids_buf.append(ids[keep])
        vec_buf.append(vectors[keep])
        buffered += int(keep.sum())
        if buffered >= target:
            flush()
    flush()
    old_ids = [h[0] for h in chosen]
    with store.connect() as con:
        con.execute("BEGIN")
        try:
            for row in new_segments:
                con.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?)", row)
            for table in moves:
                con.register("moved", table)
                con.execute("UPDATE windows SET segment_id = moved.segment_id FROM moved WHERE windows.id = moved.id")
                con.unregister("moved")
            placeholders = ", ".join("?" * len(old_ids))
            con.execute(f"DELETE FROM windows WHERE NOT alive AND segment_id IN ({placeholders})", old_ids)
            con.execute(f"DELETE FROM segments WHERE id IN ({placeholders})", old_ids)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            for path in written:
                path.unlink(missing_ok=True)
            raise
    for _, file, _, _ in chosen:
        (store.sets_dir / info.name / file).unlink(missing_ok=True)
    return CompactReport(info.name, len(health), len(health) - len(chosen) + len(new_segments), dropped)
