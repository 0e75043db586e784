"""Building a large set's approximate-nearest-neighbour index, and keeping it fresh incrementally.

Exact search reads every vector of a set; above ``ANN_MIN_WINDOWS`` live windows a
build also keeps an inverted-file index of product-quantised codes (FAISS IVF-PQ with
4-bit fast-scan codes): a search scans a few lists at a few bytes per window and hands
the best few hundred to an exact re-ranking from the segments.  It replaced an HNSW
graph over float32, which took minutes to build at 1M windows, held the vectors a
second time in memory, and on clustered data let its greedy walk stop in the wrong
clump for one query in eight whatever its breadth; an inverted file cannot miss a clump
it probes (``bench/scale_bench.py`` has the figures).  Being compressed at every size,
it needs no second kind for sets past memory.

It is derived data, never the only copy of a vector, and it never goes stale.  It comes
in two parts: a *base*, written by a full build and never rewritten, and a small *delta*
(an empty copy of the base's trained index) to which each build adds the windows it
committed, so an update costs what was added, not the set's size.  Windows removed
since (changed or deleted files) are hidden at search time by an ID selector, and
windows committed after the index was written are coded in memory with its lists and
codebooks by the reader (``SetAnn.cover``).  The base is rebuilt only when a fifth of it is dead, the delta
passes a tenth of it (its lists were trained on the base's windows), or a centred set's
mean has drifted - in a background thread while a build embeds.

Each part holds its own pre-transform (centring on the set mean for sets compared
centred, then scaling to unit length), so the file alone says how a query must be
treated.

Reading it (``load_ann``, ``SetAnn.search``) is ``indexer.store.ann``'s.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import faiss
import numpy as np

from audioscan.indexer.store import catalog
from audioscan.indexer.store.ann import SetAnn, index_centre, kind_name, load_ann, signature, unit_vectors
from audioscan.indexer.store.files import ann_name
from audioscan.indexer.store.records import SetInfo, utcnow
from audioscan.indexer.store.segments import write_index
from audioscan.indexer.store.snapshot import Snapshot
from audioscan.indexer.store.store import Store
from audioscan.models import threads

ANN_MIN_WINDOWS = 100_000
# Dimensions per 4-bit sub-quantiser: 768 dimensions become 192 bytes (a 16th of float32).  Four
# dimensions (96 bytes) searched as fast but, where the nearest windows are near-ties among
# thousands (1M x 768, windows independent around 256 centres), kept recall@10 at 0.58-0.66
# against 0.83-0.94 with two (bench/scale_bench.py --rho 0 --subvector-dims 4).
SUBVECTOR_DIMS = 2
CODEBOOK_SIZE = 16  # codes per 4-bit sub-quantiser: a set needs at least this many windows to learn them
MIN_SUBQUANTIZERS = 64
# Past this many, wider sets (5120 dimensions of a multi-layer model) get wider parts: the
# errors of 1,024 codes already average out, and the scan costs in proportion to them.
MAX_SUBQUANTIZERS = 1024
# Training sample per list, and k-means iterations (FAISS asks for at least 39 points a list).
TRAIN_PER_LIST = 64
MIN_PER_LIST = 39
KMEANS_ITERATIONS = 20
# Training points per code of each sub-quantiser.  FAISS's default, 256, learns 16 codes of two
# dimensions from 4,096 points; 64, 128 and 256 all gave recall@10 0.999-1.000 (200 candidates
# re-ranked, 100k x 768 clustered windows, two seeds each), and 64 trains in a third of the time.
TRAIN_PER_CODE = 64
# Rebuild once this share of the index's windows is dead (filtered at every search).
DEAD_MAX = 0.2
# Rebuild a centred index once the set mean has moved this far, in units of the spread of the
# vectors around it (its lists and codes are in the geometry of its own centre).
CENTRE_DRIFT_MAX = 0.25
# The delta is merged into a rebuilt base once it holds this share of the base's windows.
DELTA_MAX = 0.1


def list_count(windows: int) -> int:
    """Inverted lists for a set of this size: the power of two nearest sqrt(n) (1,024 at 1M),
    at most one per ``MIN_PER_LIST`` windows so each list's centroid is learnt from enough."""
    nearest = 2 ** round(math.log2(math.sqrt(max(windows, 1))))
    return max(1, min(nearest, windows // MIN_PER_LIST))


def subquantizers(dim: int) -> int:
    """Sub-quantisers of the product codes: the fewest that divide ``dim`` into parts of at most
    ``SUBVECTOR_DIMS`` dimensions (at most ``MAX_SUBQUANTIZERS`` of them), and at least
    ``MIN_SUBQUANTIZERS`` (or one per dimension): with fewer, the codes' errors no longer average
    out and the true neighbours fall out of the candidates (32 dimensions, a file's windows
    correlated: 8 sub-quantisers gave recall@10 0.84, 32 gave 1.00)."""
    least = max(min(-(-dim // SUBVECTOR_DIMS), MAX_SUBQUANTIZERS), min(dim, MIN_SUBQUANTIZERS))
    return next(m for m in range(least, dim + 1) if dim % m == 0)


def _new_index(dim: int, centre: np.ndarray | None, sample: np.ndarray, windows: int) -> faiss.Index:
    """An index trained for a set of ``windows`` windows on ``sample`` (raw vectors)."""
    inner: Any = faiss.index_factory(dim, f"IVF{list_count(windows)},PQ{subquantizers(dim)}x4fs",
                                     faiss.METRIC_INNER_PRODUCT)  # an IndexIVFPQFastScan
    inner.cp.niter = KMEANS_ITERATIONS
    # The sizes are chosen above; this keeps FAISS's advice about small samples off stderr.
    inner.cp.min_points_per_centroid = inner.pq.cp.min_points_per_centroid = 1
    inner.pq.cp.max_points_per_centroid = TRAIN_PER_CODE
    index = faiss.IndexPreTransform(inner)
    index.prepend_transform(faiss.NormalizationTransform(dim, 2.0))
    if centre is not None:
        centring = faiss.CenteringTransform(dim)
        faiss.copy_array_to_vector(np.ascontiguousarray(centre, dtype=np.float32), centring.mean)
        centring.is_trained = True
        index.prepend_transform(centring)
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    # The lists are one large k-means, on every thread; the codes are hundreds of tiny ones, on
    # this thread alone (models.threads), training on what the pre-transform makes of the sample.
    lists = unit_vectors(sample - centre if centre is not None else sample)
    inner.train_q1(len(lists), faiss.swig_ptr(lists), False, faiss.METRIC_INNER_PRODUCT)
    with threads.faiss_on_this_thread_alone():
        index.train(sample)  # the lists are trained already: FAISS trains the codes alone
    return index


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


def _usable_index(snapshot: Snapshot, centred: bool, centre: np.ndarray | None) -> "SetAnn | None":
    """The set's index when new windows can simply be added to it; None when the base must be
    (re)built: none yet, another kind, a fifth of it dead, a delta past a tenth of it, or a
    centred set whose mean has moved."""
    ann = load_ann(snapshot, centred)
    if (ann is None or len(ann.dead) > DEAD_MAX * ann.ntotal or ann.parts[1].ntotal > DELTA_MAX * ann.parts[0].ntotal
            or _drifted(snapshot, index_centre(ann.parts[0]), centre)):
        return None
    return ann


def _base_index(snapshot: Snapshot, centre: np.ndarray | None) -> tuple[faiss.Index, faiss.Index]:
    """A new base holding every window of the snapshot, and its empty delta: the same trained
    lists, codebooks and transforms, copied before any window is added (FAISS cannot clone a
    centring transform, so through the serialised form; a copy of the filled base would cost
    its whole size)."""
    windows = len(snapshot)
    index = _new_index(snapshot.info.dim, centre, _sample(snapshot, TRAIN_PER_LIST * list_count(windows)), windows)
    delta = faiss.deserialize_index(faiss.serialize_index(index))
    _add(index, snapshot, np.ones(windows, dtype=bool))
    return index, delta


class BaseBuilder(threading.Thread):
    """Builds a new base index of one snapshot while the build embeds (FAISS releases the GIL),
    so a due rebuild overlaps the embedding instead of following it.  It only builds in memory:
    :func:`build_ann` writes it, with a delta of the windows committed meanwhile."""

    def __init__(self, snapshot: Snapshot, centred: bool, *, centre: np.ndarray | None) -> None:
        super().__init__(daemon=True, name=f"ann-{snapshot.info.name}")
        self.snapshot, self.centred, self.centre = snapshot, centred, centre
        self.indexes: tuple[faiss.Index, faiss.Index] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.indexes = _base_index(self.snapshot, self.centre)
        except BaseException as err:  # handed to the build's thread by result()
            self.error = err

    def result(self) -> tuple[tuple[faiss.Index, faiss.Index], np.ndarray]:
        """The built base and empty delta, and the window ids the base holds."""
        self.join()
        if self.error is not None:
            raise self.error
        assert self.indexes is not None  # run() sets one of the two
        return self.indexes, self.snapshot.ids


def start_rebuild(store: Store, info: SetInfo, *, centred: bool = False,
                  minimum: int = ANN_MIN_WINDOWS) -> BaseBuilder | None:
    """Start rebuilding the set's base index in the background when it is due; None when not."""
    snapshot = store.snapshot(info, stats=centred)
    if len(snapshot) < max(minimum, CODEBOOK_SIZE):
        return None
    centre = snapshot.set_mean().astype(np.float32) if centred else None
    if _usable_index(snapshot, centred, centre) is not None:
        return None
    builder = BaseBuilder(snapshot, centred, centre=centre)
    builder.start()
    return builder


def build_ann(store: Store, info: SetInfo, *, centred: bool = False, minimum: int = ANN_MIN_WINDOWS,
              prepared: BaseBuilder | None = None) -> str | None:
    """Bring the set's index up to date as its size asks; returns what was done (``"built"``,
    ``"added"`` to the delta, ``"kept"`` when only its record changed, ``"dropped"``) or None
    when it was already fresh.

    ``centred``: the set's vectors are compared after subtracting the set's mean.
    ``prepared``: a base started by :func:`start_rebuild`, used if a rebuild is still due.
    """
    snapshot = store.snapshot(info, stats=centred)
    current = signature(snapshot)
    old_files = [part.file for part in snapshot.ann.values()]
    if len(snapshot) < max(minimum, CODEBOOK_SIZE):
        if old_files:
            _record(store, info, {}, current, old_files)
            return "dropped"
        return None
    kind = kind_name(centred)
    base = snapshot.ann.get("base")
    if base is not None and base.kind == kind and all(p.signature == current for p in snapshot.ann.values()):
        return None
    centre = snapshot.set_mean().astype(np.float32) if centred else None
    ann = _usable_index(snapshot, centred, centre)
    if ann is not None:
        return _add_to_delta(store, snapshot, ann, current, kind)
    if prepared is not None and prepared.centred == centred:
        (index, delta), covered = prepared.result()
    else:
        (index, delta), covered = _base_index(snapshot, centre), snapshot.ids
    since = ~np.isin(snapshot.ids, covered, assume_unique=True)  # committed while the base was built
    if since.any():
        _add(delta, snapshot, since)
    # The delta is written even when empty, so the next build only reads and adds to a small file.
    parts: dict[str, tuple[str, faiss.Index | None, str]] = {
        "base": (ann_name(store.token, current), index, kind),
        "delta": (ann_name(store.token, current, part="delta"), delta, kind)}
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


def _add_to_delta(store: Store, snapshot: Snapshot, ann: "SetAnn", current: str, kind: str) -> str:
    """New windows go into the small delta (coded with the base's own lists and codebooks); the
    base file is never rewritten, so the cost follows the windows added, not the set's size."""
    info = snapshot.info
    if not len(ann.missing):
        _record(store, info, {part: (snapshot.ann[part].file, kind, index.ntotal)
                              for part, index in zip(("base", "delta"), ann.parts)}, current, [])
        return "kept"
    delta = ann.parts[1]
    chosen = np.zeros(len(snapshot), dtype=bool)
    chosen[ann.missing] = True
    _add(delta, snapshot, chosen)
    parts = {"base": (snapshot.ann["base"].file, None, kind),
             "delta": (ann_name(store.token, current, part="delta"), delta, kind)}
    _write_parts(store, info, parts=parts, current=current, replaced=[snapshot.ann["delta"].file],
                 counts={"base": ann.parts[0].ntotal})
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
                write_index(path, index)
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
    with store.connect() as con, catalog.transaction(con):
        con.execute("DELETE FROM ann_indexes WHERE set_id = ?", [info.id])
        for part, (name, kind, count) in parts.items():
            con.execute("INSERT INTO ann_indexes VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [info.id, part, name, kind, current, count, utcnow()])
        if retired:
            store.retire_files(con, info.id, files=retired)
