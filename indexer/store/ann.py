"""A derived approximate-nearest-neighbour index for large sets (HNSW over unit vectors).

Exact search reads every vector of a set; above ``ANN_MIN_WINDOWS`` live windows a
build also makes an HNSW graph of the normalised vectors so a search touches a few
thousand of them.  It is derived data: built from the segments, recorded with the
signature of the live windows it covers, ignored (exact search takes over) as soon
as a commit changes the set, rebuilt by the next build, and never the only copy of
a vector.  Written like a segment under this writer's own name; the index it
replaces is retired for the readers still using it.
"""

from __future__ import annotations

import hashlib

import faiss
import numpy as np

from audioscan.indexer.store.files import ann_name
from audioscan.indexer.store.records import SetInfo, utcnow
from audioscan.indexer.store.segments import write_index
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.store.store import Store

ANN_MIN_WINDOWS = 100_000
HNSW_NEIGHBOURS = 32
EF_CONSTRUCTION = 80
EF_SEARCH = 128


def signature(snapshot: Snapshot) -> str:
    """Changes whenever the set's live vectors change (a commit, a delete, a compaction)."""
    top = int(snapshot.ids[-1]) if len(snapshot.ids) else 0
    segments = [segment.id for segment in snapshot.segments]
    return hashlib.blake2b(f"{len(snapshot)}|{top}|{segments}".encode(), digest_size=12).hexdigest()


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Rows (or one vector) scaled to unit length, so inner product is cosine similarity;
    an all-zero row stays zero instead of becoming NaN."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def build_ann(store: Store, info: SetInfo, centred: bool = False, minimum: int = ANN_MIN_WINDOWS) -> bool:
    """Make (or drop) the set's ANN index as its size asks; True when one was built.

    ``centred``: the set's vectors are compared after subtracting the set's mean, and so
    is the graph built (its kind records it, so a search never mixes the two).
    """
    snapshot = store.snapshot(info, stats=centred)
    current = signature(snapshot)
    kind = "hnsw-centred" if centred else "hnsw"
    if len(snapshot) < minimum:
        if snapshot.ann_file:
            _record(store, info, None, current, 0, snapshot.ann_file)
        return False
    if snapshot.ann_file and snapshot.ann_signature == current and snapshot.ann_kind == kind:
        return False
    centre = snapshot.set_mean().astype(np.float32) if centred else None
    graph = faiss.IndexHNSWFlat(info.dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    index = faiss.IndexIDMap2(graph)
    for _, ids, vectors in snapshot.iter_segments():
        index.add_with_ids(unit_vectors(vectors if centre is None else vectors - centre), ids)
    name = ann_name(store.token, current)
    path = store.files.set_dir(info.name) / name
    try:
        write_index(path, index)
        _record(store, info, name, current, index.ntotal, snapshot.ann_file, kind)
    except BaseException:
        store.files.remove(path)
        raise
    return True


def _record(store: Store, info: SetInfo, name: str | None, current: str, count: int, old_file: str | None,
            kind: str = "hnsw") -> None:
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM ann_indexes WHERE set_id = ?", [info.id])
        if name:
            con.execute("INSERT INTO ann_indexes VALUES (?, ?, ?, ?, ?, ?)", [info.id, name, kind, current, count,
                                                                            utcnow()])
        if old_file and old_file != name:
            store.retire_files(con, info.id, [old_file])
        con.execute("COMMIT")


def load_ann(snapshot: Snapshot, centred: bool = False) -> faiss.Index | None:
    """The set's ANN index if it matches the snapshot's live windows (and centring), else None."""
    if (snapshot.ann_file is None or snapshot.ann_signature != signature(snapshot)
            or snapshot.ann_kind != ("hnsw-centred" if centred else "hnsw")):
        return None
    index = snapshot.load_ann()
    faiss.downcast_index(index.index).hnsw.efSearch = EF_SEARCH
    return index
