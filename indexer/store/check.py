"""``index check``: prove the store is consistent, or say exactly what is wrong.

Checks that every listed segment file exists and holds exactly the vectors its
windows point to, that no file has two live copies of a window, that every fully
embedded file has exactly the windows the windowing rule gives for its duration,
and that nothing unlisted lies in the set folders.
"""

from __future__ import annotations

import numpy as np

from audioscan.indexer.store.segments import read_segment
from audioscan.indexer.store.store import Store
from audioscan.indexer.media.windows import WindowSpec, window_starts


def check_store(store: Store) -> list[str]:
    """Every inconsistency found, as one sentence each (empty when the store is sound).

    Files a crash left unlisted are not inconsistencies (no reader ever sees them and
    the next writer deletes them); :func:`leftovers` lists them.
    """
    problems: list[str] = []
    for info in store.sets():
        with store.connect() as con:
            by_segment = con.execute(
                "SELECT segment_id, list(id ORDER BY id) FROM windows WHERE set_id = ? GROUP BY segment_id",
                [info.id]).fetchall()
            dupes = con.execute(
                "SELECT m.path, w.start_s, count(*) FROM windows w JOIN media m ON m.id = w.media_id "
                "WHERE w.set_id = ? AND w.alive GROUP BY m.path, w.start_s HAVING count(*) > 1 LIMIT 5",
                [info.id]).fetchall()
            counts = con.execute(
                "SELECT m.path, m.duration, m.status, ms.n_windows, count(w.id) FROM media_sets ms "
                "JOIN media m ON m.id = ms.media_id LEFT JOIN windows w ON w.media_id = ms.media_id "
                "AND w.set_id = ms.set_id AND w.alive WHERE ms.set_id = ? GROUP BY ALL", [info.id]).fetchall()
            orphans = con.execute(
                "SELECT count(*) FROM windows w LEFT JOIN media_sets ms ON ms.media_id = w.media_id "
                "AND ms.set_id = w.set_id WHERE w.set_id = ? AND w.alive AND ms.media_id IS NULL",
                [info.id]).fetchone()[0]
        expected_ids = {seg: np.asarray(ids, dtype=np.int64) for seg, ids in by_segment}
        for seg_id, path, n_vectors in store.segments(info):
            if not path.exists():
                problems.append(f"set {info.name}: segment file {path.name} is missing")
                continue
            try:
                ids, vectors = read_segment(path)
            except RuntimeError:
                problems.append(f"set {info.name}: segment file {path.name} is unreadable")
                continue
            want = expected_ids.pop(seg_id, np.zeros(0, np.int64))
            if len(ids) != n_vectors or vectors.shape[1] != info.dim:
                problems.append(f"set {info.name}: segment {path.name} holds {len(ids)}x{vectors.shape[1]} "
                                f"vectors, the catalog says {n_vectors}x{info.dim}")
            elif not np.array_equal(np.sort(ids), want):
                problems.append(f"set {info.name}: segment {path.name} and its windows disagree on vector ids")
            elif not np.isfinite(vectors).all():
                problems.append(f"set {info.name}: segment {path.name} holds non-finite vectors")
        for seg_id in expected_ids:
            problems.append(f"set {info.name}: windows point to segment {seg_id}, which is not listed")
        for path, start, n in dupes:
            problems.append(f"set {info.name}: {path} has {n} live windows starting at {start:g} s")
        if orphans:
            problems.append(f"set {info.name}: {orphans} live windows belong to no fully embedded file")
        win, hop = WindowSpec(info.window, info.hop).samples(info.sample_rate)
        for path, duration, status, recorded, live in counts:
            expected = len(window_starts(round((duration or 0) * info.sample_rate), win, hop))
            if status != "ok":
                problems.append(f"set {info.name}: {path} is '{status}' but still has vectors")
            elif not recorded == live == expected:
                problems.append(f"set {info.name}: {path} should have {expected} windows, "
                                f"the catalog records {recorded} and {live} are live")
    return problems


def leftovers(store: Store) -> list[str]:
    """Files under sets/ that the catalog does not list, as notes."""
    return [f"{path.relative_to(store.path)} is not in the catalog (left by an interrupted write; "
            "the next build removes it)" for path in store.unlisted_files()]
