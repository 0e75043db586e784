"""A derived approximate-nearest-neighbour index for large sets, kept fresh incrementally.

Exact search reads every vector of a set; above ``ANN_MIN_WINDOWS`` live windows a
build also keeps an HNSW graph of the set, so a search touches a few thousand
vectors.  It is derived data, never the only copy of a vector, and it never goes
stale.  It comes in two parts: a *base*, written by a full build and never rewritten,
and a small *delta* to which each build adds the windows it committed, so an update
costs what was added, not the set's size.  Windows removed since (changed or deleted
files) are hidden at search time by an ID selector, and windows committed after the
graph was written are scored exactly beside it (``query.search``).  The base is
rebuilt only when a fifth of the graph is dead, the delta passes a tenth of the base,
or a centred set's mean has drifted - in a background thread while a build embeds.

Each part holds its own pre-transform (centring on the set mean for sets compared
centred, then scaling to unit length), so the file alone says how a query must be
treated.  Above ``COMPRESS_ABOVE_BYTES`` of float32 vectors (2M windows of 768
dimensions) HNSW over float32 no longer fits comfortably beside everything else in
memory, and the base stores 8-bit scalar-quantised vectors instead (a quarter of the
bytes); search re-ranks its candidates exactly from the segments either way.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import faiss
import numpy as np

from audioscan.indexer.store.files import ann_name
from audioscan.indexer.store.records import SetInfo, utcnow
from audioscan.indexer.store.segments import write_index
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.store.store import Store

ANN_MIN_WINDOWS = 100_000
HNSW_NEIGHBOURS = 32
# Build breadth: 200 instead of 80 doubles a full build (1M x 768 on 2 cores: 126 s -> 251 s)
# and lifts recall@10 at efSearch 128 from 0.72 to 0.84 there (bench/scale_bench.py).
EF_CONSTRUCTION = 200
EF_SEARCH = 128
# Rebuild once this share of the graph's windows is dead (filtered at every search).
DEAD_MAX = 0.2
# Rebuild a centred graph once the set mean has moved this far, in units of the spread of the
# vectors around it (the graph's geometry is that of its own centre).
CENTRE_DRIFT_MAX = 0.25
COMPRESS_ABOVE_BYTES = 6 << 30
# The delta graph is merged into a rebuilt base once it holds this share of the base's windows.
DELTA_MAX = 0.1
# A compressed graph's scores are approximate: it hands over this many times the candidates
# asked for, and the exact vectors decide.
COMPRESSED_OVERSAMPLE = 4
# Vectors the 8-bit quantiser learns its per-dimension ranges from.
_SQ_TRAIN = 100_000


@dataclass(frozen=True)
class AnnKind:
    """What a graph is: compressed or not, centred or not (the catalog's ``kind`` text)."""

    compressed: bool
    centred: bool

    @property
    def name(self) -> str:
        return "hnsw" + ("-sq8" if self.compressed else "-flat") + ("-centred" if self.centred else "")


# Graphs written before they carried their own transform ("hnsw", "hnsw-centred") are not
# among these: searches ignore them and the next build replaces them.
KINDS = frozenset(AnnKind(c, n).name for c in (False, True) for n in (False, True))


def choose_kind(count: int, dim: int, centred: bool, compress_above: int = COMPRESS_ABOVE_BYTES) -> AnnKind:
    return AnnKind(count * dim * 4 > compress_above, centred)


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


def graph_ids(index: faiss.Index) -> np.ndarray:
    """The window ids a graph holds."""
    return faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)


def graph_centre(index: faiss.Index) -> np.ndarray | None:
    """The mean a centred graph subtracts (None for an uncentred one)."""
    chain = faiss.downcast_index(index.index).chain
    for i in range(chain.size()):
        transform = faiss.downcast_VectorTransform(chain.at(i))
        if isinstance(transform, faiss.CenteringTransform):
            return faiss.vector_to_array(transform.mean)
    return None


def _new_graph(dim: int, kind: AnnKind, centre: np.ndarray | None, sample: np.ndarray | None) -> faiss.Index:
    if kind.compressed:
        graph = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    else:
        graph = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = EF_CONSTRUCTION
    transformed = faiss.IndexPreTransform(graph)
    transformed.prepend_transform(faiss.NormalizationTransform(dim, 2.0))
    if centre is not None:
        centring = faiss.CenteringTransform(dim)
        faiss.copy_array_to_vector(np.ascontiguousarray(centre, dtype=np.float32), centring.mean)
        centring.is_trained = True
        transformed.prepend_transform(centring)
    if kind.compressed:
        transformed.train(np.ascontiguousarray(sample, dtype=np.float32))
    return faiss.IndexIDMap2(transformed)


def _sample(snapshot: Snapshot, count: int, seed: int = 0) -> np.ndarray:
    if len(snapshot) <= count:
        return snapshot.vectors()
    chosen = np.sort(np.random.default_rng(seed).choice(len(snapshot), count, replace=False))
    return snapshot.vectors_at(chosen)


def _drifted(snapshot: Snapshot, old: np.ndarray | None, new: np.ndarray | None) -> bool:
    """Whether the set mean moved by more than ``CENTRE_DRIFT_MAX`` of the vectors' RMS distance
    from it (within-file and between-file spread together, from the per-file statistics)."""
    if old is None or new is None or snapshot.stats is None:
        return False
    stats = snapshot.stats
    weights = stats.n_windows.astype(np.float64)
    between = ((stats.means.astype(np.float64) - new) ** 2).sum(axis=1)
    within = (stats.stds.astype(np.float64) ** 2).sum(axis=1)
    spread = np.sqrt((weights * (between + within)).sum() / max(weights.sum(), 1.0))
    return float(np.linalg.norm(new - old)) > CENTRE_DRIFT_MAX * max(spread, 1e-12)


def _usable_graph(snapshot: Snapshot, kind: AnnKind, centre: np.ndarray | None) -> "Graph | None":
    """The set's graph when new windows can simply be added to it; None when the base must be
    (re)built: none yet, another kind, a fifth of it dead, a delta past a tenth of it, or a
    centred set whose mean has moved."""
    base = snapshot.ann.get("base")
    if base is None or base.kind != kind.name:
        return None
    graph = load_ann(snapshot, kind.centred)
    delta = graph.parts[1].ntotal if len(graph.parts) > 1 else 0
    if (len(graph.dead) > DEAD_MAX * graph.ntotal or delta > DELTA_MAX * graph.parts[0].ntotal
            or _drifted(snapshot, graph_centre(graph.parts[0]), centre)):
        return None
    return graph


def _base_graph(snapshot: Snapshot, kind: AnnKind, centre: np.ndarray | None) -> faiss.Index:
    index = _new_graph(snapshot.info.dim, kind, centre, _sample(snapshot, _SQ_TRAIN) if kind.compressed else None)
    _add(index, snapshot, np.ones(len(snapshot), dtype=bool))
    return index


class BaseBuilder(threading.Thread):
    """Builds a new base graph of one snapshot while the build embeds (FAISS releases the GIL),
    so a due rebuild overlaps the embedding instead of following it.  It only builds in memory:
    :func:`build_ann` writes it, with a delta of the windows committed meanwhile."""

    def __init__(self, snapshot: Snapshot, kind: AnnKind, centre: np.ndarray | None) -> None:
        super().__init__(daemon=True, name=f"graph-{snapshot.info.name}")
        self.snapshot, self.kind, self.centre = snapshot, kind, centre
        self.index: faiss.Index | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.index = _base_graph(self.snapshot, self.kind, self.centre)
        except BaseException as err:  # handed to the build's thread by result()
            self.error = err

    def result(self) -> tuple[faiss.Index, np.ndarray]:
        """The built index and the window ids it holds."""
        self.join()
        if self.error is not None:
            raise self.error
        return self.index, self.snapshot.ids


def start_rebuild(store: Store, info: SetInfo, centred: bool = False, minimum: int = ANN_MIN_WINDOWS,
                  compress_above: int = COMPRESS_ABOVE_BYTES) -> BaseBuilder | None:
    """Start rebuilding the set's base graph in the background when it is due; None when not."""
    snapshot = store.snapshot(info, stats=centred)
    if len(snapshot) < minimum:
        return None
    kind = choose_kind(len(snapshot), info.dim, centred, compress_above)
    centre = snapshot.set_mean().astype(np.float32) if centred else None
    if _usable_graph(snapshot, kind, centre) is not None:
        return None
    builder = BaseBuilder(snapshot, kind, centre)
    builder.start()
    return builder


def build_ann(store: Store, info: SetInfo, centred: bool = False, minimum: int = ANN_MIN_WINDOWS,
              compress_above: int = COMPRESS_ABOVE_BYTES, prepared: BaseBuilder | None = None) -> str | None:
    """Bring the set's graph up to date as its size asks; returns what was done (``"built"``,
    ``"added"`` to the delta, ``"kept"`` when only its record changed, ``"dropped"``) or None
    when it was already fresh.

    ``centred``: the set's vectors are compared after subtracting the set's mean.
    ``prepared``: a base started by :func:`start_rebuild`, used if a rebuild is still due.
    """
    snapshot = store.snapshot(info, stats=centred)
    current = signature(snapshot)
    old_files = [part.file for part in snapshot.ann.values()]
    if len(snapshot) < minimum:
        if old_files:
            _record(store, info, {}, current, old_files)
            return "dropped"
        return None
    kind = choose_kind(len(snapshot), info.dim, centred, compress_above)
    base = snapshot.ann.get("base")
    if base is not None and base.kind == kind.name and all(p.signature == current for p in snapshot.ann.values()):
        return None
    centre = snapshot.set_mean().astype(np.float32) if centred else None
    graph = _usable_graph(snapshot, kind, centre)
    if graph is not None:
        return _add_to_delta(store, snapshot, graph, snapshot.load_ann("delta"), current, kind)
    if prepared is not None and prepared.kind == kind:
        index, covered = prepared.result()
    else:
        index, covered = _base_graph(snapshot, kind, centre), snapshot.ids
    parts = {"base": (ann_name(store.token, current), index, kind.name)}
    since = ~np.isin(snapshot.ids, covered, assume_unique=True)  # committed while the base was built
    if since.any():
        delta = _new_graph(info.dim, AnnKind(False, centred), graph_centre(index), None)
        _add(delta, snapshot, since)
        parts["delta"] = (ann_name(store.token, current, "delta"), delta, AnnKind(False, centred).name)
    _write_parts(store, info, parts, current, old_files)
    return "built"


def _add(index: faiss.Index, snapshot: Snapshot, chosen: np.ndarray) -> None:
    """Add the snapshot's windows where ``chosen`` to ``index``, one segment at a time."""
    for positions, ids, vectors in snapshot.iter_segments():
        fresh = chosen[positions]
        if fresh.all():
            index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        elif fresh.any():
            index.add_with_ids(np.ascontiguousarray(vectors[fresh], dtype=np.float32), ids[fresh])


def _add_to_delta(store: Store, snapshot: Snapshot, graph: "Graph", delta: faiss.Index | None, current: str,
                  kind: AnnKind) -> str:
    """New windows go into the small delta graph (flat, with the base's own centring); the
    base file is never rewritten, so the cost follows the windows added, not the set's size."""
    info = snapshot.info
    if not len(graph.missing):
        _record(store, info, {part: (snapshot.ann[part].file, snapshot.ann[part].kind, index.ntotal)
                              for part, index in zip(("base", "delta"), graph.parts)}, current, [])
        return "kept"
    if delta is None:
        delta = _new_graph(info.dim, AnnKind(False, kind.centred), graph_centre(graph.parts[0]), None)
    chosen = np.zeros(len(snapshot), dtype=bool)
    chosen[graph.missing] = True
    _add(delta, snapshot, chosen)
    base = snapshot.ann["base"]
    parts = {"base": (base.file, None, base.kind),
             "delta": (ann_name(store.token, current, "delta"), delta, AnnKind(False, kind.centred).name)}
    _write_parts(store, info, parts, current, [snapshot.ann["delta"].file] if "delta" in snapshot.ann else [],
                 {"base": graph.parts[0].ntotal})
    return "added"


def _write_parts(store: Store, info: SetInfo, parts: dict[str, tuple[str, faiss.Index | None, str]], current: str,
                 replaced: list[str], counts: dict[str, int] | None = None) -> None:
    """Write the parts that have a new index (the others are recorded as they are), then record
    them all in one transaction, retiring ``replaced``; a failure leaves no file of ours behind."""
    written = []
    try:
        for name, index, _ in parts.values():
            if index is not None:
                path = store.files.set_dir(info.name) / name
                written.append(path)
                write_index(path, index, checksum=False)
        counts = dict(counts or {})
        counts.update({part: index.ntotal for part, (_, index, _) in parts.items() if index is not None})
        _record(store, info, {part: (name, kind, counts[part]) for part, (name, _, kind) in parts.items()}, current,
                [file for file in replaced if file not in {name for name, _, _ in parts.values()}])
    except BaseException:
        for path in written:
            store.files.remove(path)
        raise


def _record(store: Store, info: SetInfo, parts: dict[str, tuple[str, str, int]], current: str,
            retired: list[str]) -> None:
    with store.connect() as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM ann_indexes WHERE set_id = ?", [info.id])
        for part, (name, kind, count) in parts.items():
            con.execute("INSERT INTO ann_indexes VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [info.id, part, name, kind, current, count, utcnow()])
        if retired:
            store.retire_files(con, info.id, retired)
        con.execute("COMMIT")


@dataclass
class Graph:
    """A loaded graph as one snapshot sees it: its parts (base, then delta), which snapshot
    windows it lacks (committed after it was written) and the selector hiding its dead windows."""

    parts: list[faiss.Index]
    missing: np.ndarray  # positions (into the snapshot) of live windows the graph does not hold
    dead: np.ndarray  # window ids the graph holds that are no longer live
    compressed: bool = False

    def __post_init__(self) -> None:
        # Built once; FAISS keeps raw pointers, so the Python objects stay referenced here.
        self._dead_ids = np.ascontiguousarray(self.dead, dtype=np.int64)
        self._batch = faiss.IDSelectorBatch(len(self._dead_ids), faiss.swig_ptr(self._dead_ids))
        self._live = faiss.IDSelectorNot(self._batch) if len(self._dead_ids) else None

    @property
    def ntotal(self) -> int:
        return sum(part.ntotal for part in self.parts)

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Window ids of each part's ``count`` nearest live windows (approximate, unordered); a
        compressed graph gives ``COMPRESSED_OVERSAMPLE`` times as many, for exact re-ranking.
        Safe to call from several threads (the page's): each call has its own parameters."""
        query = np.ascontiguousarray(query[None], dtype=np.float32)
        found = []
        for k, part in enumerate(self.parts):
            wanted = count * COMPRESSED_OVERSAMPLE if self.compressed and k == 0 else count
            params = faiss.SearchParametersHNSW()
            params.efSearch = max(EF_SEARCH, wanted)
            if self._live is not None:
                params.sel = self._live
            _, ids = part.search(query, min(wanted, part.ntotal), params=params)
            found.append(ids[0][ids[0] >= 0])
        return np.concatenate(found)


def load_ann(snapshot: Snapshot, centred: bool = False) -> Graph | None:
    """The set's graph as this snapshot sees it, or None when there is none of this centring."""
    base = snapshot.ann.get("base")
    if base is None or base.kind not in KINDS or base.kind.endswith("-centred") != centred:
        return None
    parts = [snapshot.load_ann(part, mmap=True) for part in ("base", "delta") if part in snapshot.ann]
    held = np.concatenate([graph_ids(part) for part in parts])
    dead = held[~np.isin(held, snapshot.ids, assume_unique=True)]
    missing = np.flatnonzero(~np.isin(snapshot.ids, held, assume_unique=True))
    return Graph(parts, missing, dead, "-sq8" in base.kind)
