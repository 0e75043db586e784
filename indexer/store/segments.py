"""Immutable FAISS segment files: the only durable copy of the vectors.

A segment holds the exact vectors of one commit of one set (fp32, or fp16 when the
set asks for it), keyed by window id.  It is written to a temporary name, fsynced,
renamed into place and the folder fsynced, so after a crash a segment file is
either complete or absent; the catalog records it, with a checksum of its bytes,
only afterwards.  Reading goes through FAISS's own I/O: fp32 segments are
memory-mapped (``IO_FLAG_MMAP_IFC``), so scoring a large set streams from the page
cache instead of copying it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections import OrderedDict
from pathlib import Path

import faiss
import numpy as np

from audioscan.indexer.errors import StoreError
from audioscan.indexer.store.files import TMP_SUFFIX

DTYPES = ("fp32", "fp16")
# Memory-mapped fp32 segments kept open per process (address space, not memory: the pages
# belong to the page cache).
_OPEN_MAX = 256
_OPEN: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_CHECKSUM_CHUNK = 8 << 20


def _new_index(dim: int, dtype: str) -> faiss.Index:
    if dtype == "fp16":
        inner = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    else:
        inner = faiss.IndexFlatIP(dim)
    return faiss.IndexIDMap2(inner)


def fsync_dir(folder: Path) -> None:
    if os.name == "nt":  # folders cannot be opened for fsync on Windows; NTFS journals the rename
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_segment(path: Path, ids: np.ndarray, vectors: np.ndarray, dtype: str) -> str:
    """Durably write ``vectors`` (``[n, dim]``) under ``ids`` to ``path``; returns the checksum."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _new_index(vectors.shape[1], dtype)
    index.add_with_ids(vectors, np.ascontiguousarray(ids, dtype=np.int64))
    return write_index(path, index)


def write_index(path: Path, index: faiss.Index, checksum: bool = True) -> str | None:
    """Write any FAISS index to ``path`` so that a crash leaves it whole or absent; returns its
    checksum, or None when not asked (a large derived index is streamed to disk, not copied
    into memory to hash it)."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    data = faiss.serialize_index(index) if checksum else None
    try:
        with open(tmp, "xb") as handle:  # a name of this writer's own: never someone else's file
            if data is not None:
                handle.write(memoryview(data))
            else:
                faiss.write_index(index, faiss.PyCallbackIOWriter(handle.write))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:  # the commit protocol removes the temporary file; the catalog is untouched
        if err.errno == errno.ENOSPC:
            needed = f"{len(data) / 1e6:.0f} MB for this segment" if data is not None else "more space"
            raise StoreError(f"the disk holding {path.parent} is full ({needed}); free some space and run "
                             "the command again: what was committed before is kept") from None
        raise StoreError(f"cannot write {path.name} into {path.parent} ({err.strerror or err}); what was "
                         "committed before is kept") from None
    return hashlib.blake2b(memoryview(data), digest_size=16).hexdigest() if checksum else None


def checksum(path: Path) -> str:
    """The checksum :func:`write_segment` recorded, computed again from the file."""
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHECKSUM_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Mapped:
    """Keeps a memory-mapped FAISS index alive for as long as a numpy view of it exists."""

    def __init__(self, index: faiss.Index, view: np.ndarray) -> None:
        self._index = index
        self.__array_interface__ = view.__array_interface__


def read_index(path: Path, mmap: bool = False) -> faiss.Index:
    """A FAISS index from a store file, or one sentence naming the damage."""
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
    except RuntimeError as err:
        if not path.exists():
            raise StoreError(f"{path.name} of set {path.parent.name} is missing from the store; run "
                             "'audioscan index repair' and then 'audioscan index build' to restore it") from err
        raise StoreError(f"{path.name} of set {path.parent.name} is damaged (FAISS cannot read it); run "
                         "'audioscan index repair' and then 'audioscan index build' to restore it") from err


def read_segment(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, vectors)`` of a segment, vectors as float32 ``[n, dim]`` (zero-copy for fp32).

    Segments never change once written, so the last few opened stay open for the whole
    process (keyed by the file's identity, so a damaged or replaced file is read again):
    the next snapshot's fetch skips FAISS's open and finds the pages already mapped.
    """
    info = path.stat() if path.exists() else None
    key = (str(path), info.st_ino, info.st_size, info.st_mtime_ns) if info else None
    with _OPEN_LOCK:
        if key in _OPEN:
            _OPEN.move_to_end(key)
            return _OPEN[key]
    index = read_index(path, mmap=True)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    inner = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexFlat):
        raw = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d)
        vectors = np.asarray(_Mapped(index, raw)).reshape(inner.ntotal, inner.d)
        with _OPEN_LOCK:
            # A mapping keeps a deleted file's disk space: drop those of files collected since.
            for gone in [k for k in _OPEN if not os.path.exists(k[0])]:
                del _OPEN[gone]
            _OPEN[key] = (ids, vectors)
            while len(_OPEN) > _OPEN_MAX:
                _OPEN.popitem(last=False)
    else:
        vectors = inner.reconstruct_n(0, inner.ntotal)  # fp16: decoded copies are not kept
    return ids, vectors


def self_check() -> dict[str, str]:
    """Store and search two vectors in each segment kind: proves FAISS loads (``audioscan doctor``)."""
    vectors = np.eye(2, 8, dtype=np.float32)
    for dtype in ("fp16", "fp32"):
        index = _new_index(8, dtype)
        index.add_with_ids(vectors, np.array([7, 9], dtype=np.int64))
        _, ids = index.search(vectors[1:], 1)
        if int(ids[0, 0]) != 9:
            raise StoreError(f"FAISS {faiss.__version__} returned a wrong neighbour; its build is broken")
    return {"faiss": faiss.__version__}
