"""The one fault boundary: faults of the machine as one sentence each, for the CLI and the page.

A full disk, a read-only folder, a file the system will not open, an input/output error, a name too
long, a damaged catalog: none is the user's mistake and none is a bug, so none may end in a
traceback.  Every error that reaches a front-end passes :func:`machine_fault`; what it recognises
comes back as a :class:`MachineFault` (a ``UserError``: one sentence naming the path and what to
do), anything else is left alone - a bug keeps its traceback.  Nothing stored is lost by these
faults: the store commits whole or not at all (see ``indexer.store``), so the sentence says so.
"""

from __future__ import annotations

import errno
import sqlite3

import av
import duckdb

from audioscan.errors import UserError
from audioscan.indexer.store.catalog import fault_words

_KEPT = "what was stored before is kept"
# errno -> (what happened, what to do)
_OS_FAULTS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space and run the command again"),
    errno.EDQUOT: ("the disk quota is used up", "free some space and run the command again"),
    errno.EACCES: ("permission denied", "make it accessible to you, or choose another folder"),
    errno.EPERM: ("the operation is not permitted", "make it accessible to you, or choose another folder"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable disk"),
    errno.EIO: ("an input/output error (the disk or its connection failed)",
                "check the disk, then run the command again"),
    errno.ENAMETOOLONG: ("the name is too long for its file system", "choose a shorter folder or file name"),
    errno.ENOENT: ("it does not exist", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("it is a folder, not a file", "give a file"),
    errno.EMFILE: ("too many files are open", "raise the limit (ulimit -n) or use fewer threads"),
    errno.ENOMEM: ("the machine ran out of memory", "close other programs or use fewer threads"),
    errno.EPIPE: ("the output was closed before everything was written", "read the whole output"),
}


class MachineFault(UserError):
    """The machine could not do what was asked (disk, permissions, hardware); the sentence says what to do."""

    kind = "fault"


class DiskFull(MachineFault):
    kind = "storage_full"


def machine_fault(err: BaseException) -> MachineFault | None:
    """``err`` as one sentence when it is a fault of the machine, else None."""
    if isinstance(err, OSError):
        return _os_fault(err)
    if isinstance(err, av.error.FFmpegError):
        where = getattr(err, "filename", None) or "a media file"
        return MachineFault(f"FFmpeg could not read or write {where} ({getattr(err, 'strerror', None) or err}); "
                            f"check the file and the folder, then run the command again ({_KEPT})")
    if isinstance(err, sqlite3.Error):  # a database written for another tool (perch-hoplite)
        return _sqlite_fault(err)
    if isinstance(err, duckdb.Error):
        words = fault_words(err)
        if words is not None:
            return (DiskFull if words == "full" else MachineFault)(
                f"the store's catalog could not be used ({_first_line(err)}); "
                + ("free some space and run the command again" if words == "full" else
                   "run 'audioscan index check', and 'audioscan index repair' if it finds damage")
                + f" ({_KEPT})")
    return None


def _os_fault(err: OSError) -> MachineFault:
    what, todo = _OS_FAULTS.get(err.errno or -1, (err.strerror or type(err).__name__, "check the path and the disk"))
    paths = [str(name) for name in (err.filename, getattr(err, "filename2", None)) if name]
    where = " -> ".join(paths) if paths else "a file"
    kind = DiskFull if err.errno in (errno.ENOSPC, errno.EDQUOT) else MachineFault
    return kind(f"cannot use {where}: {what}; {todo} ({_KEPT})")


# SQLite's result codes for faults of the machine -> the errno that says the same.
_SQLITE_ERRNO = {"SQLITE_FULL": errno.ENOSPC, "SQLITE_READONLY": errno.EROFS, "SQLITE_IOERR": errno.EIO,
                 "SQLITE_CANTOPEN": errno.EACCES, "SQLITE_PERM": errno.EPERM, "SQLITE_NOMEM": errno.ENOMEM}


def _sqlite_fault(err: sqlite3.Error) -> MachineFault | None:
    name = getattr(err, "sqlite_errorname", "") or ""
    code = next((number for prefix, number in _SQLITE_ERRNO.items() if name.startswith(prefix)), None)
    return None if code is None else _os_fault(OSError(code, str(err)))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
