"""A derived approximate-nearest-neighbour index for large sets (HNSW over unit vectors).

Exact search reads every vector of a set; above ``ANN_MIN_WINDOWS`` live windows a
build also makes an HNSW graph of the normalised vectors so a search touches a few
thousand of them.  It is derived data: built from the segments, recorded with the
signature of the live windows it covers, ignored (exact search takes over) as soon
as a commit changes the set, rebuilt by the next build, and never the only copy of
a vector.  Written like a segment: temp file, fsync, rename, then the catalog.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import faiss
import numpy as np

from audioscan.indexer.store.records import SetInfo, utcnow
from audioscan.indexer.store.segments import write_index
from audioscan.indexer.store.store import Store

ANN_MIN_WINDOWS = 100_000
HNSW_NEIGHBOURS = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 128


def signature(store: Store, info: SetInfo) -> str:
    """Changes whenever the set's live vectors change (a commit, a delete, a compaction)."""
    with store.connect() as con:
        live, top = con.execute("SELECT count(*), coalesce(max(id), 0) FROM windows WHERE set_id = ? AND alive",
                                [info.id]).fetchone()
        segments = [r[0] for r in con.execute("SELECT id FROM segments WHERE set_id = ? ORDER BY id",
                                              [info.id]).fetchall()]
    return hashlib.blake2b(f"{live}|{top}|{segments}".encode(), digest_size=12).hexdigest()


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, so inner product is cosine similarity;
    an all-zero row stays zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def build_ann(store: Store, info: SetInfo, minimum: int = ANN_MIN_WINDOWS) -> bool:
    """Make (or drop) the set's ANN index as its size asks; True when one was built."""
    with store.connect() as con:
        live = con.execute("SELECT count(*) FROM windows WHERE set_id = ? AND alive", [info.id]).fetchone()[0]
        old = con.execute("SELECT file, signature FROM ann_indexes WHERE set_id = ?", [info.id]).fetchone()
    current = signature(store, info)
    if live < minimum:
        if old:
            _record(store, info, None, current, 0, old[0])
        return False
    if old and old[1] == current:
        return False
    graph = faiss.IndexHNSWFlat(info.dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    index = faiss.IndexIDMap2(graph)
    for ids, vectors in store.iter_vectors(info):
        index.add_with_ids(unit_vectors(vectors), ids)
    name = f"ann-{current}.faiss"
    write_index(store.sets_dir / info.name / name, index)
    _record(store, info, name, current, index.ntotal, old[0] if old else None)
    return True


def _record(store: Store, info: SetInfo, name: str | None, current: str, count: int, old_file: str | None) -> None:
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM ann_indexes WHERE set_id = ?", [info.id])
        if name:
            con.execute("INSERT INTO ann_indexes VALUES (?, ?, 'hnsw', ?, ?, ?)", [info.id, name, current, count, utcnow()])
        con.execute("COMMIT")
    if old_file and old_file != name:
        (store.sets_dir / info.name / old_file).unlink(missing_ok=True)


def load_ann(store: Store, info: SetInfo) -> faiss.Index | None:
    """The set's ANN index if one exists and still matches the live windows, else None."""
    with store.connect() as con:
        row = con.execute("SELECT file, signature FROM ann_indexes WHERE set_id = ?", [info.id]).fetchone()
    if row is None or row[1] != signature(store, info):
        return None
    path: Path = store.sets_dir / info.name / row[0]
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        return None  # removed by a concurrent rebuild: exact search is always correct
    faiss.downcast_index(index.index).hnsw.efSearch = EF_SEARCH
    return index
