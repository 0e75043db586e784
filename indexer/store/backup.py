"""The way back from a catalog that cannot be read: a good copy kept after every change that succeeded.

The segments hold vectors and window ids, not the media paths and times that give them
meaning, so a catalog cut short by an interrupted copy or a disk that filled mid-write
would cost the whole library.  After each write command that succeeds (a build,
compaction, repair...), the writer - still holding the lock - checkpoints the catalog and
copies it whole beside itself (temporary name, fsync, rename) with its checksum.
``index repair`` on a catalog that cannot be read sets it aside and puts the copy in its
place; what was committed after the copy (labels or detectors changed since) is lost and
said so, and the next build embeds whatever the copy does not list.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from audioscan.indexer.store import catalog
from audioscan.indexer.store.records import utcnow
from audioscan.indexer.store.segments import checksum, fsync_dir

GOOD_COPY, GOOD_RECORD = catalog.GOOD_COPY, catalog.GOOD_RECORD  # the record: {"checksum", "taken"}


@dataclass(frozen=True)
class Restored:
    """A damaged catalog replaced by the good copy: when the copy was taken, where the damaged one went."""

    taken: dt.datetime
    damaged: Path


def keep_good_copy(folder: Path) -> None:
    """Checkpoint the catalog and copy it whole beside itself, with its checksum (the caller is
    the writer, so no build changes it meanwhile; the open connection keeps other processes out)."""
    path = folder / catalog.CATALOG_FILE
    tmp = folder / (GOOD_COPY + ".tmp")
    with catalog.connect(path, read_only=False) as con:
        con.execute("CHECKPOINT")
        shutil.copyfile(path, tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    record = {"checksum": checksum(tmp), "taken": utcnow().isoformat()}
    os.replace(tmp, folder / GOOD_COPY)
    (folder / GOOD_RECORD).write_text(json.dumps(record) + "\n", encoding="utf-8")
    fsync_dir(folder)


def readable(path: Path) -> bool:
    """Whether every row of every table of the catalog at ``path`` can be read."""
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        tables = [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables "
                                                "WHERE table_type = 'BASE TABLE'").fetchall()]
        for table in tables:  # hashing each whole row reads every page the table has
            con.execute(f'SELECT count(*) FROM "{table}" WHERE hash("{table}") IS NOT NULL').fetchall()
        return True
    except duckdb.Error:
        return False
    finally:
        con.close()


def restore_good_copy(folder: Path) -> Restored | None:
    """Put the good copy in place of a catalog that cannot be read; None when the catalog reads
    well (nothing to do).  A sentence when there is no good copy, or it fails its checksum."""
    from audioscan.indexer.errors import StoreError

    path = folder / catalog.CATALOG_FILE
    if not path.exists() or readable(path):
        return None
    copy, record_path = folder / GOOD_COPY, folder / GOOD_RECORD
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        intact = copy.is_file() and checksum(copy) == record["checksum"]
    except (OSError, ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        raise StoreError(f"the catalog {path} cannot be read and there is no intact good copy of it to restore "
                         "(one is kept after every successful build); build the library again into a new store")
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    damaged = folder / f"{catalog.CATALOG_FILE}.damaged-{stamp}"
    os.replace(path, damaged)
    wal = folder / (catalog.CATALOG_FILE + ".wal")
    if wal.exists():
        os.replace(wal, folder / f"{catalog.CATALOG_FILE}.wal.damaged-{stamp}")
    tmp = folder / (catalog.CATALOG_FILE + ".tmp")
    shutil.copyfile(copy, tmp)
    os.replace(tmp, path)
    fsync_dir(folder)
    return Restored(dt.datetime.fromisoformat(record["taken"]), damaged)

