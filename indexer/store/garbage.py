"""What a writer removes, and when: the store's only deletions of its own files.

Two kinds of file stop being needed.  Files a compaction or an index rebuild
replaced are *retired*: readers that took their snapshot earlier may still read
them, so they are deleted only once they are older than a grace period.  Files a
crash left between "segment written" and "catalog committed" are *unlisted*: they
are deleted once the writer that made them is known to be gone (closed, or a dead
process of this machine), or after the grace period for any other writer.  Only
files of our own naming, in our own set folders, are ever touched (``files``).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from pathlib import Path
from typing import Callable, ContextManager

import duckdb

from audioscan.indexer.store.files import StoreFiles, writer_of
from audioscan.indexer.store.records import utcnow

# Files retired by compaction or an index rebuild are kept this long for readers that
# took their snapshot before (a search, a train, a rescore: seconds; this is minutes).
RETIRE_GRACE_SECONDS = float(os.environ.get("AUDIOSCAN_RETIRE_GRACE", 600))


class Garbage:
    """Garbage collection, mixed into ``Store``, which provides what is declared here."""

    files: StoreFiles
    token: str
    connect: Callable[[], ContextManager[duckdb.DuckDBPyConnection]]
    _require_write: Callable[[], None]

    def _listed(self, con: duckdb.DuckDBPyConnection) -> set[tuple[str, str]]:
        rows = con.execute("SELECT s.name, g.file FROM segments g JOIN sets s ON s.id = g.set_id UNION ALL "
                           "SELECT s.name, a.file FROM ann_indexes a JOIN sets s ON s.id = a.set_id UNION ALL "
                           "SELECT coalesce(r.set_name, s.name), r.file FROM retired_files r "
                           "LEFT JOIN sets s ON s.id = r.set_id").fetchall()
        return set(rows)

    def unlisted_files(self) -> list[Path]:
        """Files of ours under sets/ that no committed catalog row refers to (crash leftovers)."""
        with self.connect() as con:
            listed = self._listed(con)
        return [path for folder, path in self.files.owned_files() if (folder, path.name) not in listed]

    def collect_garbage(self, grace: float | None = None) -> list[Path]:
        """Delete what no reader can need any more; returns what was deleted.

        * retired files (replaced by compaction or an index rebuild) older than ``grace``;
        * unlisted files of ours (a crash between "segment written" and "catalog
          committed") whose writer is known to be gone - closed, or a dead process on
          this machine - or, for any other writer, older than ``grace``.

        Only files of our own naming, inside our own set folders, are ever touched.
        """
        self._require_write()
        grace = RETIRE_GRACE_SECONDS if grace is None else grace
        cutoff = utcnow() - dt.timedelta(seconds=grace)
        with self.connect() as con:
            retired = con.execute("SELECT r.set_id, coalesce(r.set_name, s.name), r.file FROM retired_files r "
                                  "LEFT JOIN sets s ON s.id = r.set_id WHERE r.retired_at < ?", [cutoff]).fetchall()
            listed = self._listed(con)
            writers = {token: (pid, host, closed) for token, pid, host, closed in
                       con.execute("SELECT token, pid, host, closed_at FROM writers").fetchall()}
        removed: list[Path] = []
        for set_id, set_name, file in retired:
            path = self.files.file(set_name, file)
            self.files.remove(path)
            if not path.exists():
                removed.append(path)
                with self.connect() as con:
                    con.execute("DELETE FROM retired_files WHERE set_id = ? AND file = ?", [set_id, file])
        now = time.time()
        for folder, path in self.files.owned_files():
            if (folder, path.name) in listed or writer_of(path.name) == self.token:
                continue
            gone = _writer_gone(writers.get(writer_of(path.name) or "", None))
            try:
                old = now - path.lstat().st_mtime > grace
            except FileNotFoundError:
                continue
            if (gone or old or writer_of(path.name) is None) and self.files.remove(path):
                removed.append(path)
        return removed


def _writer_gone(writer: tuple[int, str, dt.datetime | None] | None) -> bool:
    """True when a writer is known to have finished: it closed, or it was a process of this
    machine that no longer runs (killed).  Unknown writers are left to the grace period."""
    if writer is None:
        return False
    pid, host, closed = writer
    if closed is not None:
        return True
    if host != socket.gethostname() or os.name == "nt" or pid is None:
        return False  # another machine (shared storage) or no safe liveness check: wait it out
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return pid == os.getpid()
