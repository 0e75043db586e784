"""Immutable FAISS segment files: the only durable copy of the vectors.

A segment holds the exact vectors of one commit of one set (fp32, or fp16 when the
set asks for it), keyed by window id.  It is written to a temporary name, fsynced,
renamed into place and the folder fsynced, so after a crash a segment file is
either complete or absent; the catalog records it only afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

DTYPES = ("fp32", "fp16")
TMP_SUFFIX = ".tmp"


def segment_name(segment_id: int) -> str:
    return f"seg-{segment_id:08d}.faiss"


def _new_index(dim: int, dtype: str) -> faiss.Index:
    if dtype == "fp16":
        inner = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:
        inner = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(inner)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_segment(path: Path, ids: np.ndarray, vectors: np.ndarray, dtype: str) -> None:
    """Durably write ``vectors`` (``[n, dim]``) under ``ids`` to ``path``, atomically."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _new_index(vectors.shape[1], dtype)
    index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    write_index(path, index)


def write_index(path: Path, index: faiss.Index) -> None:
    """Write any FAISS index to ``path`` so that a crash leaves it whole or absent."""
    data = faiss.serialize_index(index)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as handle:
        handle.write(memoryview(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


class _MappedArray(np.ndarray):
    """A view into a memory-mapped segment that keeps the mapping alive as long as it lives."""

    owner: object = None


def read_segment(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a segment, vectors as float32 ``[n, dim]``.

    fp32 segments are memory-mapped, not copied: scoring a large set streams from the
    page cache instead of duplicating it in memory.  fp16 segments are decoded.
    """
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexFlat):
        flat = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d).reshape(inner.ntotal, inner.d)
        vectors = flat.view(_MappedArray)
        vectors.owner = index
    else:
        vectors = inner.reconstruct_n(0, inner.ntotal)
    return ids, vectors
