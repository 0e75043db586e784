"""A set's approximate-nearest-neighbour index as readers see it: loaded from a snapshot, searched.

The index is derived data (``indexer.store.ann_build`` writes and updates it) in two parts, a base
and a small delta sharing its lists and codebooks; a search asks both for candidates, hides the
windows that died since (an ID selector), and finds the windows committed after the index was
written once they are coded in memory (:meth:`SetAnn.cover`); ``query.search`` re-ranks exactly.  Reading needs a snapshot, never the store.
"""

from __future__ import annotations

import hashlib
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import faiss
import numpy as np

from audioscan.indexer.store.snapshot import Snapshot

# Lists probed per search: at about sqrt(n) lists that is 16 / sqrt(n) of the set (1.6 % at 1M).
NPROBE = 16
# The codes only pick candidates; the exact vectors order them.  At least this many are
# re-ranked, and four times the number asked for (bench/scale_bench.py, 1M x 768 with windows
# independent around their cluster: 200 candidates gave recall@10 0.83-0.94 where 50 gave
# 0.56-0.72; `search -k 10` asks for 320 windows, and with 96-byte codes four times as many
# candidates found 98 % of the exact search's moments where twice found 93 %).
CANDIDATES_MIN = 200
OVERSAMPLE = 4
KIND = "ivfpq"


def kind_name(centred: bool) -> str:
    """The catalog's ``kind`` of a set's index."""
    return KIND + ("-centred" if centred else "")


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


def index_ids(index: faiss.Index) -> np.ndarray:
    """The window ids an index holds, list by list."""
    lists: Any = faiss.extract_index_ivf(index).invlists  # an ArrayInvertedLists, never None once trained
    held = [faiss.rev_swig_ptr(lists.get_ids(k), lists.list_size(k))
            for k in range(lists.nlist) if lists.list_size(k)]
    return np.concatenate(held).astype(np.int64) if held else np.zeros(0, dtype=np.int64)


def index_centre(index: faiss.Index) -> np.ndarray | None:
    """The mean a centred index subtracts (None for an uncentred one)."""
    pretransform: Any = index  # an IndexPreTransform, whose chain (a SWIG vector) faiss's stubs call a list
    chain = pretransform.chain
    for i in range(chain.size()):
        transform = faiss.downcast_VectorTransform(chain.at(i))
        if isinstance(transform, faiss.CenteringTransform):
            return faiss.vector_to_array(transform.mean)
    return None


@dataclass
class SetAnn:
    """A set's index as one snapshot sees it: its parts (base, then delta), which snapshot
    windows it lacks (committed after it was written) and the selector hiding its dead windows."""

    parts: list[faiss.Index]
    missing: np.ndarray  # positions (into the snapshot) of live windows the index does not hold
    _: KW_ONLY
    dead: np.ndarray  # window ids the index holds that are no longer live
    covering: faiss.Index | None = field(default=None, init=False, repr=False)  # the missing, coded in memory

    def __post_init__(self) -> None:
        # Built once; FAISS keeps raw pointers, so the Python objects stay referenced here.
        self._dead_ids = np.ascontiguousarray(self.dead, dtype=np.int64)
        self._batch = faiss.IDSelectorBatch(len(self._dead_ids), faiss.swig_ptr(self._dead_ids))
        self._live = faiss.IDSelectorNot(self._batch) if len(self._dead_ids) else None

    @property
    def ntotal(self) -> int:
        return sum(part.ntotal for part in self.parts)

    def cover(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Code the windows the index lacks (``vectors`` as stored, under their window ``ids``) with
        its own lists and codebooks, in memory, so a search finds them as it finds the rest: an
        empty copy of the trained delta holds them, as the next build's delta on disk will.  Scored
        exactly beside the index instead, they were read whole for every query: 10k of them made a
        search at 100k windows 3x slower than after the build had added them."""
        part = faiss.deserialize_index(faiss.serialize_index(self.parts[1]))  # the delta: small, trained as the base
        part.reset()
        part.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.ascontiguousarray(ids, dtype=np.int64))
        self.covering = part

    def search(self, query: np.ndarray, count: int) -> np.ndarray:
        """Window ids of live candidates for the ``count`` nearest windows (approximate, unordered:
        ``OVERSAMPLE`` times as many, at least ``CANDIDATES_MIN``) for exact re-ranking.  The
        parts share their lists and codebooks, so their approximate scores compare and the best
        of both are kept.  Safe to call from several threads (the page's): each call has its own
        parameters."""
        query = np.ascontiguousarray(query[None], dtype=np.float32)
        wanted = max(OVERSAMPLE * count, CANDIDATES_MIN)
        scores, found = [], []
        for part in self.parts + ([self.covering] if self.covering is not None else []):
            if not part.ntotal:  # an empty delta
                continue
            params = faiss.SearchParametersIVF()
            params.nprobe = NPROBE
            if self._live is not None:
                params.sel = self._live
            approximate, ids = part.search(query, min(wanted, part.ntotal), params=params)
            kept = ids[0] >= 0
            scores.append(approximate[0][kept])
            found.append(ids[0][kept])
        held, nearest = np.concatenate(found), np.concatenate(scores)
        if len(held) > wanted:
            held = held[np.argpartition(-nearest, wanted - 1)[:wanted]]
        return held


def load_ann(snapshot: Snapshot, centred: bool = False) -> SetAnn | None:
    """The set's index as this snapshot sees it, or None when there is none of this centring.

    Indexes written by earlier versions (the HNSW graphs: "hnsw", "hnsw-flat-centred", ...) are
    of another kind: searches ignore them and the next build replaces them."""
    base = snapshot.ann.get("base")
    if base is None or base.kind != kind_name(centred) or "delta" not in snapshot.ann:
        return None
    parts = [snapshot.load_ann(part) for part in ("base", "delta")]
    held = np.concatenate([index_ids(part) for part in parts])
    dead = held[~np.isin(held, snapshot.ids, assume_unique=True)]
    missing = np.flatnonzero(~np.isin(snapshot.ids, held, assume_unique=True))
    return SetAnn(parts, missing, dead=dead)
