"""A catalog brought back from damage (found by ``integrity.damage``) or loss.

:func:`rebuild` makes a new catalog.  What can be recomputed (media, windows, segments, sets and
their bookkeeping) is taken whole from one source, so its tables agree with each other and with the
segment files: the damaged catalog when every such table still reads, otherwise the good copy kept
after the last successful change (see ``backup``), otherwise nothing (the next build embeds the
library again).  The user's work (labels, detectors) is the journal's (see ``journal``) - laid over
whatever of it the damaged catalog and the good copy still hold when the journal itself is not
whole - and is placed on the new catalog by file root and path and by set name, listing a file or a
set the new catalog lacks so that nothing is dropped for want of it.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

import duckdb

from audioscan.indexer.store import catalog, journal
from audioscan.indexer.store.annotations import read_work, write_work
from audioscan.indexer.store.backup import intact_good_copy
from audioscan.indexer.store.integrity import readable_tables, tables
from audioscan.indexer.store.journal import Work
from audioscan.indexer.store.places import PLACE_TABLES
from audioscan.indexer.store.records import utcnow
from audioscan.indexer.store.segments import fsync_dir

# The tables that hold the user's work; every other table can be recomputed from media and segments.
WORK_TABLES = ("labels", "classifiers", *PLACE_TABLES)


@dataclass(frozen=True)
class Salvaged:
    """What :func:`rebuild` made of a damaged or missing catalog, in numbers."""

    set_aside: Path | None  # where the damaged catalog went (None: it was missing)
    base: str  # where the library's bookkeeping came from, in words
    _: KW_ONLY
    labels: int
    detectors: int
    detector_versions: int
    lost_labels: int  # labels some source still held that are not back
    lost_detector_versions: int
    journal_damaged_lines: int

    def sentence(self) -> str:
        lost = [f"{self.lost_labels} labels" if self.lost_labels else "",
                f"{self.lost_detector_versions} detector versions" if self.lost_detector_versions else "",
                f"whatever {self.journal_damaged_lines} damaged journal lines held" if self.journal_damaged_lines
                else ""]
        lost_text = ", ".join(part for part in lost if part) or "none"
        where = f"set aside as {self.set_aside.name}" if self.set_aside else "missing"
        return (f"the catalog was {where} and rebuilt from {self.base}: restored {self.labels} labels and "
                f"{self.detectors} detectors ({self.detector_versions} versions); lost: {lost_text}")


@dataclass(frozen=True)
class _Source:
    """A catalog file read for salvage, with the tables of it that read whole."""

    path: Path
    words: str
    _: KW_ONLY
    readable: list[str]
    version: int

    def whole_except_work(self, wanted: list[str]) -> bool:
        return self.version == catalog.SCHEMA_VERSION and all(
            table in self.readable for table in wanted if table not in WORK_TABLES)

    def work(self) -> Work | None:
        """The labels and detectors it holds, when the tables that name them read."""
        needed = {"labels", "classifiers", "media", "roots", "sets"}
        if not needed <= set(self.readable):
            return None
        try:
            with closing(duckdb.connect(str(self.path), read_only=True)) as con:
                return read_work(con)
        except duckdb.Error:
            return None


def _source(path: Path, words: str) -> _Source | None:
    try:
        readable, _bad = readable_tables(path)
        with closing(duckdb.connect(str(path), read_only=True)) as con:
            found = catalog.version(con) if "meta" in readable else 0
    except duckdb.Error:
        return None
    return _Source(path, words, readable=readable, version=found)


def rebuild(folder: Path) -> Salvaged:
    """Replace the damaged or missing catalog at ``folder`` by one built from what can still be read
    (see the module docstring).  The caller holds the writer lock and the journal's lock."""
    folder = Path(folder)
    path = folder / catalog.CATALOG_FILE
    sources = []
    if path.exists():
        found = _source(path, "the damaged catalog")
        if found is not None:
            sources.append(found)
    copy = intact_good_copy(folder)
    if copy is not None:
        found = _source(copy[0], f"the copy kept at {copy[1]:%Y-%m-%d %H:%M} UTC")
        if found is not None:
            sources.append(found)
    tmp = folder / (catalog.CATALOG_FILE + ".rebuilt.tmp")
    tmp.unlink(missing_ok=True)
    try:
        with closing(duckdb.connect(str(tmp))) as con:
            catalog.migrate(con, tmp)
            wanted = tables(con)
            base = next((source for source in sources if source.whole_except_work(wanted)), None)
            if base is not None:
                _copy_tables(con, base.path, [table for table in wanted if table not in WORK_TABLES])
            else:
                _copy_roots(con, sources)
            work, lost, replayed = _the_work(folder, sources)
            write_work(con, work)
            con.execute("CHECKPOINT")
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        set_aside = _set_aside(path)
        os.replace(tmp, path)
        fsync_dir(folder)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Salvaged(set_aside=set_aside, base=base.words if base else "nothing (the next build embeds every file)",
                    labels=len(work.labels), detectors=len(work.versions_by_detector()),
                    detector_versions=len(work.detectors), lost_labels=len(lost.labels),
                    lost_detector_versions=len(lost.detectors), journal_damaged_lines=replayed.damaged)


def _copy_tables(con: duckdb.DuckDBPyConnection, source: Path, names: list[str]) -> None:
    con.execute("ATTACH ? AS source (READ_ONLY)", [str(source)])
    try:
        with catalog.transaction(con):
            for table in names:
                con.execute(f'DELETE FROM main."{table}"')
                con.execute(f'INSERT INTO main."{table}" SELECT * FROM source."{table}"')
    finally:
        con.execute("DETACH source")


def _copy_roots(con: duckdb.DuckDBPyConnection, sources: list[_Source]) -> None:
    """With no whole source, keep at least the folders the store indexed, so status can name them."""
    for source in sources:
        if "roots" in source.readable and source.version == catalog.SCHEMA_VERSION:
            _copy_tables(con, source.path, ["roots"])
            return


def _the_work(folder: Path, sources: list[_Source]) -> tuple[Work, Work, journal.Replayed]:
    """(the work to restore, what some source held that it lacks, the journal as replayed).

    A whole journal is the work: every committed change is in it.  One with damaged lines (or none)
    is laid over the newest catalog whose work still reads, so nothing either still holds is lost."""
    replayed = journal.replay(folder)
    held = {source.words: work for source in sources if (work := source.work()) is not None}
    if replayed.complete:
        work = replayed.work
    else:
        work = replayed.work.merged_under(next(iter(held.values()), Work()))
    newest = held.get("the damaged catalog", Work())
    lost = Work(labels={key: value for key, value in newest.labels.items() if key not in work.labels},
                detectors={key: value for key, value in newest.detectors.items() if key not in work.detectors})
    return work, lost, replayed


def _set_aside(path: Path) -> Path | None:
    """Move the damaged catalog (and its write-ahead log) out of the way, kept for a closer look."""
    if not path.exists():
        return None
    stamp = utcnow().strftime("%Y%m%dT%H%M%S")
    damaged = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, damaged)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, path.with_name(f"{path.name}.wal.damaged-{stamp}"))
    return damaged
