"""Finding the files under an indexed root, cheaply enough to run on every build.

A no-op rebuild of a large library must finish in about a second, so discovery only
lists and stats (``os.scandir`` gives both in one call); it never opens a file.
Hidden files and folders are skipped, symlinked folders are followed once, and a
folder reached twice (a symlink loop) is not entered again.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

_FINGERPRINT_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """A regular file under the root: path relative to it (POSIX style), size and mtime."""

    rel: str
    abs: Path
    _: KW_ONLY
    size: int
    mtime_ns: int


def walk(root: Path, skip: Path | None = None, *, unreadable: list[str] | None = None) -> Iterator[FileEntry]:
    """Every visible regular file under ``root``, in a stable (sorted) order.

    ``skip`` is a folder never entered (the store itself, when it lies inside the root).
    Folders that cannot be listed are appended to ``unreadable`` (relative, ending in
    "/", "" for the root): their files are unavailable, not deleted.
    """
    seen_dirs: set[tuple[int, int]] = set()
    if skip is not None:
        try:
            info = skip.stat()
            seen_dirs.add((info.st_dev, info.st_ino))
        except OSError:
            pass

    def visit(folder: Path, rel: str) -> Iterator[FileEntry]:
        try:
            info = folder.stat()
        except OSError:
            if unreadable is not None:
                unreadable.append(rel)
            return
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            if unreadable is not None:
                unreadable.append(rel)
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child_rel = f"{rel}{entry.name}"
            try:
                if entry.is_dir(follow_symlinks=True):
                    yield from visit(Path(entry.path), child_rel + "/")
                elif entry.is_file(follow_symlinks=True):
                    st = entry.stat(follow_symlinks=True)
                    yield FileEntry(catalog_name(child_rel), Path(entry.path), size=st.st_size, mtime_ns=st.st_mtime_ns)
            except OSError:
                continue  # vanished or unreadable while we looked: the next build sees it

    yield from visit(root, "")


def fingerprint(source: Path | BinaryIO) -> str:
    """A content hash (BLAKE2b-128 of every byte) that recognises a moved or renamed file.

    The whole file is read: a sampled hash would call an edited file "moved" and keep
    stale vectors.  Only new or changed files are hashed, and reading is far cheaper
    than decoding them.
    """
    digest = hashlib.blake2b(digest_size=16)
    with (open(source, "rb") if isinstance(source, Path) else source) as handle:
        while chunk := handle.read(_FINGERPRINT_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def catalog_name(rel: str) -> str:
    """``rel`` as text the catalog can hold and people can read.

    A name that is not valid UTF-8 arrives from the OS with surrogate escapes, which
    no UTF-8 database accepts; its undecodable bytes are written as ``\\xNN``, and
    :func:`disk_name` turns them back, so the mapping loses nothing.
    """
    try:
        rel.encode("utf-8")
        return rel
    except UnicodeEncodeError:
        return os.fsencode(rel).decode("utf-8", "backslashreplace")


_ESCAPED_BYTE = re.compile(r"\\x([0-9a-f]{2})")


def disk_name(text: str, root: Path) -> Path:
    """The file under ``root`` that :func:`catalog_name` named ``text``."""
    path = root / text
    if "\\x" in text and not path.exists():
        raw = _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
        return root / raw
    return path
