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
import functools
import hashlib
import os
import struct
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar, cast

import faiss
import numpy as np
import xxhash

from audioscan.indexer.errors import StoreError, StoreFullError
from audioscan.indexer.store.files import TMP_SUFFIX

if TYPE_CHECKING:
    from typing_extensions import Buffer  # collections.abc.Buffer from Python 3.12

DTYPES = ("fp32", "fp16")
# Memory-mapped fp32 segments kept open per process (address space, not memory: the pages
# belong to the page cache).
_OPEN_MAX = 256
_OPEN: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_CHECKSUM_CHUNK = 8 << 20
_XXH3 = "xxh3:"  # how a recorded XXH3-128 checksum begins (one recorded as bare hex is BLAKE2b-128)
_Digest = TypeVar("_Digest", "xxhash.xxh3_128", "hashlib.blake2b")
_WRITE_CHUNK = 8 << 20


# How a set keeps its vectors on disk, by the name people use: stored name ("fp16"/"fp32", as the
# catalog's sets.dtype holds it).  float16 halves the bytes and moves a cosine by about 1e-3.
VECTOR_DTYPES = {"float16": "fp16", "float32": "fp32"}
DEFAULT_DTYPE = "float16"


def _new_index(dim: int, dtype: str) -> faiss.Index:
    inner: faiss.Index
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


def write_segment(path: Path, ids: np.ndarray, *, parts: Sequence[np.ndarray], dtype: str) -> str:
    """Durably write the rows of ``parts`` (``[n_i, dim]`` arrays, in order) under ``ids`` to
    ``path``; returns the checksum.

    A float32 segment is streamed straight from the parts in FAISS's own layout (compaction
    hands the live rows of the segments it merges, never copying them into one array or an
    index first: those two copies were a third of an insert); ``self_check`` and the tests
    hold the bytes equal to FAISS's serialisation.  fp16 segments are encoded by FAISS."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    dim = parts[0].shape[1]
    if dtype == "fp32":
        _check_layout()
        size = 2 * len(_flat_header(b"IxM2", dim, 0)) + 16 + len(ids) * (4 * dim + 8)
        digest = new_digest()
        _durable(path, lambda write: _write_flat(write, ids, parts, dim), digest, size)
        return as_recorded(digest)
    index = _new_index(dim, dtype)
    index.add_with_ids(np.ascontiguousarray(np.concatenate(parts), dtype=np.float32), ids)
    digest = new_digest()
    write_index(path, index, digest=digest, size=len(ids) * (2 * dim + 8))  # two bytes a number, eight an id
    return as_recorded(digest)


@functools.cache
def _check_layout() -> None:
    """Hold the float32 segment layout written here equal to FAISS's serialisation, once per
    process before the first write: a FAISS that laid its files out otherwise would read our
    segments wrongly, so nothing is written under it."""
    vectors = np.arange(24, dtype=np.float32).reshape(3, 8)
    ids = np.array([7, 9, 11], dtype=np.int64)
    written: list[bytes] = []
    _write_flat(lambda chunk: written.append(bytes(chunk)), ids, [vectors], 8)
    theirs = _new_index(8, "fp32")
    theirs.add_with_ids(vectors, ids)
    if b"".join(written) != faiss.serialize_index(theirs).tobytes():
        raise StoreError(f"FAISS {faiss.__version__} lays out its flat index differently from the segments "
                         "audioscan writes; install the FAISS version of audioscan's lock file")


def _flat_header(fourcc: bytes, dim: int, count: int) -> bytes:
    # FAISS's index header: d, ntotal, two unused fields it fills with 2^20, is_trained, metric.
    return fourcc + struct.pack("=iqqq?i", dim, count, 1 << 20, 1 << 20, True, faiss.METRIC_INNER_PRODUCT)


def _write_flat(write: Callable[[bytes | np.ndarray], None], ids: np.ndarray, parts: Sequence[np.ndarray],
                dim: int) -> None:
    """An ``IndexIDMap2`` over an ``IndexFlatIP``, as ``faiss.write_index`` lays it out: the
    map's header, the flat index's header, its float count and floats, then the ids."""
    count = len(ids)
    if sum(len(part) for part in parts) != count:
        raise ValueError("a segment needs one id per vector")
    write(_flat_header(b"IxM2", dim, count) + _flat_header(b"IxFI", dim, count) + struct.pack("=Q", count * dim))
    for part in parts:
        write(np.ascontiguousarray(part, dtype=np.float32).reshape(-1).view(np.uint8))
    write(struct.pack("=Q", count))
    write(ids.view(np.uint8))


def new_digest() -> xxhash.xxh3_128:
    """The checksum a segment's bytes are recorded under, fed as they are written: XXH3-128.

    It guards against accidental damage - a torn write, a flipped bit, a truncated copy - not an
    adversary, and for that a 128-bit hash with full avalanche misses a random change as rarely as
    BLAKE2b-128 did (2^-128), at memory speed (10 GB/s here against BLAKE2b's 0.3-1 GB/s, which
    made it the largest single cost of a commit)."""
    return xxhash.xxh3_128()


def as_recorded(digest: xxhash.xxh3_128) -> str:
    """A digest as the catalog records it: named, so a checksum an earlier version recorded
    (BLAKE2b-128, bare hex) is still read as what it is (:func:`matches`)."""
    return _XXH3 + digest.hexdigest()


def write_index(path: Path, index: faiss.Index, *, digest: xxhash.xxh3_128 | None = None,
                size: int | None = None) -> None:
    """Write any FAISS index to ``path`` so that a crash leaves it whole or absent, feeding its
    bytes to ``digest`` when given.  The bytes stream from FAISS to the file, hashed on the
    way, never copied whole into memory.  ``size``: about the bytes it takes, when known."""
    writer = getattr(faiss, "PyCallbackIOWriter")  # in faiss's Python layer, not in its stubs
    _durable(path, lambda write: faiss.write_index(index, writer(write, _WRITE_CHUNK)), digest, size)


def _durable(path: Path, fill: Callable[[Callable[[bytes | np.ndarray], None]], None],
             digest: xxhash.xxh3_128 | None = None, size: int | None = None) -> None:
    """Have ``fill`` write the file's bytes through the function it is given, to a temporary
    name, fsynced and renamed into place, so a crash leaves ``path`` whole or absent; the bytes
    are fed to ``digest`` on the way when one is given.  ``size``: the bytes it will take, when
    known, for the sentence a full disk gets."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, "xb") as handle:  # a name of this writer's own: never someone else's file

            def write(chunk: bytes | np.ndarray) -> None:
                data = cast("Buffer", chunk)  # numpy's stubs declare its buffer protocol from Python 3.12 only
                handle.write(data)
                if digest is not None:
                    digest.update(data)

            fill(write)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as err:  # the commit protocol removes the temporary file; the catalog is untouched
        if err.errno == errno.ENOSPC:
            needed = f"{size / 1e6:.0f} MB for this segment" if size else f"writing {path.name}"
            raise StoreFullError(f"the disk holding {path.parent} is full ({needed}); free some space and run "
                             "the command again: what was committed before is kept") from None
        raise StoreError(f"cannot write {path.name} into {path.parent} ({err.strerror or err}); what was "
                         "committed before is kept") from None


def checksum(path: Path) -> str:
    """The checksum of a file as a commit records it now."""
    return as_recorded(_fed(path, new_digest()))


def matches(path: Path, recorded: str) -> bool:
    """Whether the file's bytes are the ones ``recorded`` was taken of.  A segment (or good copy of
    the catalog) written before XXH3 keeps its BLAKE2b-128 until compaction rewrites it, so both
    are read: nothing has to be hashed again when a store is opened by this version."""
    if recorded.startswith(_XXH3):
        return checksum(path) == recorded
    return _fed(path, hashlib.blake2b(digest_size=16)).hexdigest() == recorded


def content_id(path: Path) -> str:
    """A file's identity across versions (BLAKE2b-128, hex): a set imported from a file is named by
    it, so it must stay what earlier versions computed, whatever commits record."""
    return _fed(path, hashlib.blake2b(digest_size=16)).hexdigest()


def _fed(path: Path, digest: _Digest) -> _Digest:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHECKSUM_CHUNK):
            digest.update(chunk)
    return digest


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
    """``(ids, vectors)`` of a segment, vectors ``[n, dim]`` as the segment keeps them, mapped
    without a copy: float32, or float16 (FAISS's fp16 codes are IEEE half floats, the vectors
    themselves), which a caller reads into float32 where it computes - a fetch converts only the
    rows it takes, so it reads half the bytes of a float32 set instead of decoding whole segments.

    Segments never change once written, so the last few opened stay open for the whole
    process (keyed by the file's identity, so a damaged or replaced file is read again):
    the next snapshot's fetch skips FAISS's open and finds the pages already mapped.
    """
    info = path.stat() if path.exists() else None
    key = (str(path), info.st_ino, info.st_size, info.st_mtime_ns) if info else ()
    with _OPEN_LOCK:
        if key in _OPEN:
            _OPEN.move_to_end(key)
            return _OPEN[key]
    index: Any = read_index(path, mmap=True)  # an IndexIDMap2, which faiss's stubs do not know
    ids = faiss.vector_to_array(index.id_map).astype(np.int64, copy=False)
    inner: Any = faiss.downcast_index(index.index)
    if isinstance(inner, faiss.IndexFlat):
        raw = faiss.rev_swig_ptr(inner.get_xb(), inner.ntotal * inner.d)
        vectors = np.asarray(_Mapped(index, raw)).reshape(inner.ntotal, inner.d)
    else:  # fp16: the codes are the half floats
        raw = faiss.rev_swig_ptr(inner.codes.data(), inner.ntotal * inner.code_size)
        vectors = np.asarray(_Mapped(index, raw)).view(np.float16).reshape(inner.ntotal, inner.d)
    with _OPEN_LOCK:
        # A mapping keeps a deleted file's disk space: drop those of files collected since.
        for gone in [k for k in _OPEN if not os.path.exists(k[0])]:
            del _OPEN[gone]
        _OPEN[key] = (ids, vectors)
        while len(_OPEN) > _OPEN_MAX:
            _OPEN.popitem(last=False)
    return ids, vectors


def self_check() -> dict[str, str]:
    """Store and search two vectors in each segment kind, and hold the float32 segment layout
    written here equal to FAISS's own: proves FAISS loads and reads what we write
    (``audioscan doctor``)."""
    _check_layout()
    vectors = np.eye(2, 8, dtype=np.float32)
    for dtype in ("fp16", "fp32"):
        index = _new_index(8, dtype)
        index.add_with_ids(vectors, np.array([7, 9], dtype=np.int64))
        _, ids = index.search(vectors[1:], 1)
        if int(ids[0, 0]) != 9:
            raise StoreError(f"FAISS {faiss.__version__} returned a wrong neighbour; its build is broken")
    return {"faiss": faiss.__version__}
