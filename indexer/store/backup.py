"""A good copy of the catalog kept after every change of the library that succeeded.

The segments hold vectors and window ids, not the media paths and times that give them
meaning, so a catalog cut short by an interrupted copy or a disk that filled mid-write
would cost the whole library.  After each write command that succeeds (a build,
compaction, repair...), the writer - still holding the lock - checkpoints the catalog and
copies it whole beside itself (temporary name, fsync, rename) with its checksum.
``index repair`` (``salvage``) takes the library's bookkeeping from it when the damaged
catalog's own no longer reads; labels and detectors come from their journal, which every
change to them refreshes (a whole copy per label would cost seconds on a large catalog).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from audioscan.indexer.store import catalog
from audioscan.indexer.store.records import utcnow
from audioscan.indexer.store.segments import checksum, fsync_dir, matches

GOOD_COPY, GOOD_RECORD = catalog.GOOD_COPY, catalog.GOOD_RECORD  # the record: {"checksum", "taken"}


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


def intact_good_copy(folder: Path) -> tuple[Path, dt.datetime] | None:
    """The good copy and when it was taken, when it is there and matches its recorded checksum."""
    copy = folder / GOOD_COPY
    try:
        record = json.loads((folder / GOOD_RECORD).read_text(encoding="utf-8"))
        if copy.is_file() and matches(copy, str(record["checksum"])):
            return copy, dt.datetime.fromisoformat(record["taken"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None
