"""One writer at a time, enforced by an advisory lock the kernel drops when the writer dies.

``flock`` is released automatically when the process exits, even on SIGKILL, so a
crashed build never leaves a stale lock for the user to delete by hand.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from audioscan.indexer.errors import StoreError


class WriterLock:
    """Held by the one process allowed to change a store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreError(
                f"the store {self.path.parent} is being written by process {holder}; "
                "wait for it to finish (reading commands work meanwhile)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
