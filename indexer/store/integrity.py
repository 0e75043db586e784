"""Finding damage in the catalog where a read or a write would hit it.

DuckDB checks a block's checksum when it reads the block, and reads lazily: a scan of every table
reads the tables' data, but the blocks of their indexes are read only when a write changes them.
So :func:`damage` scans every row of every table, then deletes a row of each table in a copy of the
catalog and checkpoints it, which reads (and rewrites) every block the catalog uses.  Free blocks
are never read by anyone, and damage there harms nothing.  (Measured on a catalog with each block
overwritten in turn: ``bench/damage_bench.py``.)
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import closing
from pathlib import Path

import duckdb

CATALOG_FILE = "catalog.duckdb"


def is_lock_conflict(err: Exception) -> bool:
    """Whether DuckDB refused the file because another process holds it (not a fault of the file)."""
    text = str(err).lower()  # (not merely "lock": a damaged file's message says "in block at location")
    return "could not set lock" in text or "conflicting lock" in text or "already open" in text


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute("SELECT table_name FROM information_schema.tables WHERE "
                                          "table_type = 'BASE TABLE' AND table_catalog = current_database() "
                                          "ORDER BY table_name").fetchall()]


def _scan(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Read every row of ``table`` whole (hashing a row reads each of its columns' blocks)."""
    con.execute(f'SELECT count(*) FROM "{table}" WHERE hash("{table}") IS NOT NULL').fetchall()


def readable_tables(path: Path) -> tuple[list[str], list[str]]:
    """(tables whose every row reads, tables that fail) of the catalog at ``path``; raises duckdb.Error
    when the file does not open at all."""
    good, bad = [], []
    with closing(duckdb.connect(str(path), read_only=True)) as con:
        for table in tables(con):
            try:
                _scan(con, table)
                good.append(table)
            except duckdb.Error:
                bad.append(table)
    return good, bad


def damage(folder: Path) -> str | None:
    """What DuckDB hits reading or writing the catalog at ``folder``, in its words, or None when it
    reads and writes cleanly.  The write is tried on a copy in the system's temporary folder; when no
    copy can be made there (a full disk), only the read is tried."""
    path = Path(folder) / CATALOG_FILE
    if not path.exists():
        return "the file is missing"
    try:
        _good, bad = readable_tables(path)
    except duckdb.Error as err:
        return None if is_lock_conflict(err) else _first_line(err)
    if bad:
        return f"the table {bad[0]} cannot be read"
    try:
        scratch = Path(tempfile.mkdtemp(prefix="audioscan-check-"))
    except OSError:
        return None
    try:
        copy = scratch / CATALOG_FILE
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        return _write_probe(copy)
    except OSError:
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_probe(copy: Path) -> str | None:
    """Delete a row of every table of ``copy`` and checkpoint it: every index block is read, and
    every table rewritten."""
    try:
        with closing(duckdb.connect(str(copy))) as con:
            for table in tables(con):
                con.execute(f'DELETE FROM "{table}" WHERE rowid IN (SELECT rowid FROM "{table}" LIMIT 1)')
            con.execute("CHECKPOINT")
    except duckdb.Error as err:
        return _first_line(err)
    return None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__
