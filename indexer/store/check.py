"""``index check``: prove the store is consistent, or say exactly what is wrong.

Checks that every listed segment file exists, matches the checksum recorded when it
was committed, and holds exactly the vectors its windows point to; that no file has
two live copies of a window; that every fully embedded file has exactly the windows
the windowing rule gives for its duration; and that nothing it reads is non-finite.
It never stops at the first damage and never raises: every problem is a sentence.
"""

from __future__ import annotations

import numpy as np

from audioscan.indexer.errors import StoreError
from audioscan.indexer.media.windows import window_starts
from audioscan.indexer.store import catalog
from audioscan.indexer.store.segments import matches, read_segment
from audioscan.indexer.store.store import Store
from audioscan.indexer.store.scalar import scalar


def check_store(store: Store) -> list[str]:
    """Every inconsistency found, as one sentence each (empty when the store is sound).

    Files a crash left unlisted are not inconsistencies (no reader ever sees them and
    the next writer deletes them); :func:`leftovers` lists them.
    """
    problems: list[str] = []
    for info in store.sets():
        with store.connect() as con, catalog.transaction(con):
            by_segment = con.execute(
                "SELECT segment_id, list(id ORDER BY id) FROM windows WHERE set_id = ? GROUP BY segment_id",
                [info.id]).fetchall()
            segments = con.execute("SELECT id, file, n_vectors, checksum FROM segments WHERE set_id = ? "
                                   "ORDER BY id", [info.id]).fetchall()
            dupes = con.execute(
                "SELECT r.path, m.path, w.start_s, count(*) FROM windows w JOIN media m ON m.id = w.media_id "
                "JOIN roots r ON r.id = m.root_id WHERE w.set_id = ? AND w.alive "
                "GROUP BY r.path, m.path, w.start_s, w.channel HAVING count(*) > 1 LIMIT 5", [info.id]).fetchall()
            counts = con.execute(
                "SELECT r.path || '/' || m.path, m.duration, m.status, ms.n_windows, count(w.id), "
                "count(DISTINCT w.channel) FROM media_sets ms "
                "JOIN media m ON m.id = ms.media_id JOIN roots r ON r.id = m.root_id LEFT JOIN windows w "
                "ON w.media_id = ms.media_id AND w.set_id = ms.set_id AND w.alive WHERE ms.set_id = ? "
                "GROUP BY ms.media_id, r.path, m.path, m.duration, m.status, ms.n_windows", [info.id]).fetchall()
            orphans = scalar(con, "SELECT count(*) FROM windows w LEFT JOIN media_sets ms ON ms.media_id = w.media_id "
                "AND ms.set_id = w.set_id WHERE w.set_id = ? AND w.alive AND ms.media_id IS NULL", params=[info.id])
        expected_ids = {seg: np.asarray(ids, dtype=np.int64) for seg, ids in by_segment}
        for seg_id, file, n_vectors, recorded in segments:
            want = expected_ids.pop(seg_id, np.zeros(0, np.int64))
            problem = _check_segment(store, info, file=file, n_vectors=n_vectors, recorded=recorded, want=want)
            if problem:
                problems.append(f"set {info.name}: {problem}")
        for seg_id in expected_ids:
            problems.append(f"set {info.name}: windows point to segment {seg_id}, which is not listed")
        for root, path, start, n in dupes:
            problems.append(f"set {info.name}: {root}/{path} has {n} live windows starting at {start:g} s")
        if orphans:
            problems.append(f"set {info.name}: {orphans} live windows belong to no fully embedded file")
        win, hop = info.window_samples()
        for path, duration, status, recorded, live, channels in counts:
            # Another tool's windows are cut its own way: only the catalog's two counts must agree.  A split
            # set cuts each channel of a file as the mix is cut.
            cut = window_starts(round((duration or 0) * info.sample_rate), win, hop=hop)
            expected = recorded if info.foreign else len(cut) * (channels if info.split else 1)
            if status not in ("ok", "unavailable"):
                problems.append(f"set {info.name}: {path} is '{status}' but still has vectors")
            elif not recorded == live == expected:
                problems.append(f"set {info.name}: {path} should have {expected} windows, "
                                f"the catalog records {recorded} and {live} are live")
    return problems


def _check_segment(store: Store, info, file: str, n_vectors: int, recorded: str | None,
                   want: np.ndarray) -> str | None:
    """What is wrong with one listed segment, or None."""
    try:
        path = store.files.file(info.name, file)
    except StoreError as err:
        return str(err)
    if not path.exists():
        return f"segment file {file} is missing"
    if recorded is not None and not matches(path, recorded):
        return f"segment file {file} is damaged (its checksum differs from the one recorded at commit)"
    try:
        ids, vectors = read_segment(path)
    except StoreError:
        return f"segment file {file} is unreadable"
    if len(ids) != n_vectors or vectors.shape[1] != info.dim:
        return f"segment {file} holds {len(ids)}x{vectors.shape[1]} vectors, the catalog says {n_vectors}x{info.dim}"
    if not np.array_equal(np.sort(ids), want):
        return f"segment {file} and its windows disagree on vector ids"
    if not np.isfinite(vectors).all():
        return f"segment {file} holds non-finite vectors"
    return None


def leftovers(store: Store) -> list[str]:
    """Files under sets/ that the catalog does not list, as notes."""
    return [f"{path.relative_to(store.path)} is not in the catalog (left by an interrupted write; "
            "the next build removes it)" for path in store.unlisted_files()]
