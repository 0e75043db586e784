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


def _flat_layout(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Zero-copy views of an fp32 segment's ids and vectors, or None for any other layout.

    An ``IndexIDMap2`` over an ``IndexFlat`` is serialised as: its header (fourcc
    ``IxM2``, dim as int32, count as int64, ...), the flat index (``IxFI``/``IxF2``
    header, the float count as uint64, the floats), then the id count as uint64 and
    the int64 ids.  Both counts are checked, so anything unexpected falls back to
    FAISS's own reader.
    """
    if len(raw) < 16 or bytes(raw[:4]) != b"IxM2":
        return None
    dim = int(raw[4:8].view(np.int32)[0])
    count = int(raw[8:16].view(np.int64)[0])
    ids_at = len(raw) - 8 * count
    floats_at = ids_at - 8 - 4 * count * dim
    if floats_at < 16 + 8 or dim <= 0:
        return None
    id_count = int(np.frombuffer(raw, np.uint64, 1, ids_at - 8)[0])
    float_count = int(np.frombuffer(raw, np.uint64, 1, floats_at - 8)[0])
    if id_count != count or float_count != count * dim or bytes(raw[37:41]) not in (b"IxFI", b"IxF2"):
        return None
    ids = np.frombuffer(raw, np.int64, count, ids_at)
    vectors = np.frombuffer(raw, np.float32, count * dim, floats_at).reshape(count, dim)
    return ids, vectors


def read_segment(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a segment, vectors as float32 ``[n, dim]``.

    fp32 segments are memory-mapped, not copied: scoring a large set streams from the
    page cache instead of duplicating it in memory (the views keep the mapping alive).
    fp16 segments are decoded by FAISS.
    """
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    flat = _flat_layout(raw)
    if flat is not None:
        return flat
    index = faiss.read_index(str(path))
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    return ids, faiss.downcast_index(index.index).reconstruct_n(0, index.ntotal)
