"""One writer at a time, with a lock the operating system drops when the writer dies.

``filelock`` takes an OS lock on ``LOCK`` (``flock`` on Unix, ``msvcrt`` on Windows),
released even on SIGKILL, so a crashed build never leaves a stale lock to delete by
hand.  Who holds it is written to ``WRITER`` beside it, so a refused second writer
can name the holder.  The lock is a courtesy, not the only guard: segment names and
ids are unique per writer by construction (see ``indexer.store.store``), so even a
deleted LOCK file cannot make two writers overwrite each other's work.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from filelock import FileLock, Timeout

from audioscan.indexer.errors import StoreBusyError, StoreError

LOCK_FILE = "LOCK"
HOLDER_FILE = "WRITER"


class WriterLock:
    """Held by the one process allowed to change a store."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = FileLock(folder / LOCK_FILE, timeout=0, thread_local=False)

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise StoreBusyError(
                f"the store {self.folder} is being written by {self.holder()}; "
                "wait for it to finish (reading commands work meanwhile)") from None
        except PermissionError:
            raise StoreError(f"the store {self.folder} is not writable by you (permission denied); "
                             "use a store folder you own, or read it without changing it") from None
        except OSError as err:
            raise StoreError(f"cannot lock the store {self.folder} for writing ({err.strerror or err}); "
                             "check that the folder is writable") from None
        try:
            (self.folder / HOLDER_FILE).write_text(f"process {os.getpid()} on {socket.gethostname()}\n")
        except OSError:
            pass  # only used to name the holder in a refusal

    def holder(self) -> str:
        try:
            return (self.folder / HOLDER_FILE).read_text().strip() or "another process"
        except OSError:
            return "another process"

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
