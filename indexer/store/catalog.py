"""The DuckDB catalog: its schema, its migrations, and short-lived connections.

The schema is a public interface (users query it with plain DuckDB SQL), so it is
versioned: ``MIGRATIONS[n]`` turns version n-1 into n, each applied once inside a
transaction, and a catalog newer than this program is refused rather than guessed at.

DuckDB lets one process write *or* many read, so nobody keeps the file open:
writers open it for one commit, readers for one query.  A brief conflict is
retried, which keeps readers working during a long build.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from audioscan.indexer.errors import StoreBusyError, StoreError, StoreFullError
from audioscan.indexer.store.integrity import CATALOG_FILE, damage, is_lock_conflict
from audioscan.indexer.store.scalar import scalar

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    -- A folder given to 'index build'; media paths are relative to it.
    CREATE TABLE roots (id INTEGER PRIMARY KEY, path VARCHAR NOT NULL UNIQUE, added_at TIMESTAMP);
    -- One row per media file ever seen. status: ok | failed | missing (deleted from disk;
    -- kept so labels on it survive and can be reported).
    CREATE TABLE media (
        id BIGINT PRIMARY KEY, root_id INTEGER NOT NULL, path VARCHAR NOT NULL,
        size BIGINT, mtime_ns BIGINT, fingerprint VARCHAR, duration DOUBLE,
        status VARCHAR NOT NULL, error VARCHAR, updated_at TIMESTAMP,
        UNIQUE (root_id, path));
    -- Files under a root that are not media (probed once, not again while unchanged).
    CREATE TABLE non_media (root_id INTEGER, path VARCHAR, size BIGINT, mtime_ns BIGINT,
        PRIMARY KEY (root_id, path));
    -- An embedding set: one model with one set of weights, cut one way.
    CREATE TABLE sets (
        id INTEGER PRIMARY KEY, name VARCHAR NOT NULL UNIQUE, model VARCHAR NOT NULL,
        weights_id VARCHAR NOT NULL, window_s DOUBLE NOT NULL, hop_s DOUBLE NOT NULL,
        sample_rate INTEGER NOT NULL, dim INTEGER NOT NULL, dtype VARCHAR NOT NULL,
        created_at TIMESTAMP);
    -- An immutable FAISS file sets/<set>/<file> holding the vectors of one commit.
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY, set_id INTEGER NOT NULL, file VARCHAR NOT NULL,
        n_vectors BIGINT NOT NULL, created_at TIMESTAMP);
    -- One row per window vector; id = the vector's id in its segment.  Windows of
    -- deleted or re-embedded media stay (alive = false) until compaction drops them.
    CREATE TABLE windows (
        id BIGINT PRIMARY KEY, media_id BIGINT NOT NULL, set_id INTEGER NOT NULL,
        start_s DOUBLE NOT NULL, end_s DOUBLE NOT NULL, segment_id INTEGER NOT NULL,
        alive BOOLEAN NOT NULL);
    -- A media file fully embedded in a set, with the mean and standard deviation of its
    -- window vectors (per-file z-scoring without reading the vectors).
    CREATE TABLE media_sets (
        media_id BIGINT NOT NULL, set_id INTEGER NOT NULL, n_windows INTEGER NOT NULL,
        mean FLOAT[] NOT NULL, std FLOAT[] NOT NULL, PRIMARY KEY (media_id, set_id));
    -- Every command that changed the store, with its figures.
    CREATE TABLE runs (id INTEGER PRIMARY KEY, command VARCHAR, started_at TIMESTAMP,
        finished_at TIMESTAMP, stats JSON);
    CREATE VIEW live_windows AS
        SELECT w.id, r.path AS root, m.path, s.name AS set_name, w.start_s, w.end_s
        FROM windows w JOIN media m ON m.id = w.media_id JOIN roots r ON r.id = m.root_id
        JOIN sets s ON s.id = w.set_id WHERE w.alive;
    """,
    2: """
    -- Labels are time ranges on media (not window ids), so they survive re-windowing,
    -- new models and moves.  kind: range | marker (start_s = end_s); positive = false
    -- for negatives and rejected detections.
    CREATE TABLE labels (
        id BIGINT PRIMARY KEY, media_id BIGINT NOT NULL, label VARCHAR NOT NULL,
        start_s DOUBLE NOT NULL, end_s DOUBLE NOT NULL, kind VARCHAR NOT NULL,
        positive BOOLEAN NOT NULL, source VARCHAR, created_at TIMESTAMP);
    -- Trained classifiers, kept as plain numbers (JSON) plus, for tree models, a skops
    -- file (never a pickle).  Each retrain adds a version; the newest 5 are kept.
    CREATE TABLE classifiers (
        id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, version INTEGER NOT NULL,
        label VARCHAR NOT NULL, set_id INTEGER NOT NULL, kind VARCHAR NOT NULL,
        model JSON NOT NULL, blob BLOB, metrics JSON NOT NULL, created_at TIMESTAMP,
        UNIQUE (name, version));
    -- A derived approximate-search index of a large set (sets/<set>/<file>), valid while
    -- the set's live windows still match its signature; never the only copy of a vector.
    CREATE TABLE ann_indexes (set_id INTEGER PRIMARY KEY, file VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        signature VARCHAR NOT NULL, vectors BIGINT NOT NULL, created_at TIMESTAMP);
    """,
    3: """
    -- Ids are handed out by one counter per table, taken inside a catalog transaction,
    -- so two writers can never be given the same window, segment or media id.
    CREATE TABLE id_counters (name VARCHAR PRIMARY KEY, next BIGINT NOT NULL);
    INSERT INTO id_counters SELECT 'windows', coalesce(max(id), 0) + 1 FROM windows;
    INSERT INTO id_counters SELECT 'segments', coalesce(max(id), 0) + 1 FROM segments;
    INSERT INTO id_counters SELECT 'media', coalesce(max(id), 0) + 1 FROM media;
    -- BLAKE2b-128 of a segment file's bytes at commit; 'index check' verifies it.
    ALTER TABLE segments ADD COLUMN checksum VARCHAR;
    -- A failure worth retrying while the file is unchanged (unreadable, not undecodable).
    ALTER TABLE media ADD COLUMN retry BOOLEAN DEFAULT false;
    -- Files replaced by compaction or an index rebuild.  Readers that took their snapshot
    -- before may still read them, so they are deleted only after a grace period.
    CREATE TABLE retired_files (set_id INTEGER NOT NULL, file VARCHAR NOT NULL, retired_at TIMESTAMP NOT NULL,
        PRIMARY KEY (set_id, file));
    -- Every process that opened the store for writing: its files carry its token.
    CREATE TABLE writers (token VARCHAR PRIMARY KEY, pid INTEGER, host VARCHAR, opened_at TIMESTAMP,
        closed_at TIMESTAMP);
    """,
    4: """
    -- A video's frame rate (NULL for audio), so exports write timecodes at the file's own rate.
    ALTER TABLE media ADD COLUMN fps DOUBLE;
    -- The folder of a retired file, so it can still be deleted after its set is removed.
    ALTER TABLE retired_files ADD COLUMN set_name VARCHAR;
    """,
    5: """
    -- A set's approximate index comes in parts: the 'base', written by a full build, and a small 'delta'
    -- holding the windows added since, so an incremental build never rewrites the base.
    CREATE TABLE ann_parts (set_id INTEGER NOT NULL, part VARCHAR NOT NULL, file VARCHAR NOT NULL,
        kind VARCHAR NOT NULL, signature VARCHAR NOT NULL, vectors BIGINT NOT NULL, created_at TIMESTAMP,
        PRIMARY KEY (set_id, part));
    INSERT INTO ann_parts SELECT set_id, 'base', file, kind, signature, vectors, created_at FROM ann_indexes;
    DROP TABLE ann_indexes;
    ALTER TABLE ann_parts RENAME TO ann_indexes;
    """,
    6: """
    -- The files a build set out to embed, written before it starts and removed as each one is
    -- committed: what an interrupted build left undone, counted as behind by 'index status'.
    CREATE TABLE planned (root_id INTEGER NOT NULL, path VARCHAR NOT NULL, PRIMARY KEY (root_id, path));
    """,
    7: """
    -- When a recording started, as a build found it (container metadata or a field recorder's file name):
    -- the clock's wall time, its IANA zone (NULL: unknown) and the source ('container', 'audiomoth',
    -- 'song meter'; 'none': looked, none found; NULL: not looked for yet).  Found again by any build.
    ALTER TABLE media ADD COLUMN recorded_local TIMESTAMP;
    ALTER TABLE media ADD COLUMN recorded_zone VARCHAR;
    ALTER TABLE media ADD COLUMN recorded_source VARCHAR;
    -- Starts the user gave ('index times'), which win over found ones: the user's work, kept in the journal.
    -- fold = 1: the second time that wall time happened (the hour an autumn clock change repeats).
    CREATE TABLE given_times (media_id BIGINT PRIMARY KEY, local TIMESTAMP NOT NULL, zone VARCHAR,
        fold INTEGER NOT NULL DEFAULT 0, given_at TIMESTAMP);
    -- Sites ('index sites', 'index build --site') and the folders (absolute paths) that are theirs: a file
    -- belongs to the site of the deepest folder holding it.  The user's work, kept in the journal.
    CREATE TABLE sites (name VARCHAR PRIMARY KEY, latitude DOUBLE, longitude DOUBLE);
    CREATE TABLE site_folders (folder VARCHAR PRIMARY KEY, site VARCHAR NOT NULL);
    """,
    8: """
    -- The zone a site's recorder clocks keep (IANA name or offset; NULL: not given): a start read as a local
    -- time of no known zone there (a Song Meter's file name) is in it.
    ALTER TABLE sites ADD COLUMN zone VARCHAR;
    """,
    9: """
    -- How a set hears a multichannel file: 'mix' (one mono downmix, as every set before) or 'split' (each
    -- channel its own stream).  A window's channel: 0 for the mix, else the channel's number from 1.
    ALTER TABLE sets ADD COLUMN channels VARCHAR NOT NULL DEFAULT 'mix';
    ALTER TABLE windows ADD COLUMN channel SMALLINT NOT NULL DEFAULT 0;
    -- A label's channel: 0 for the whole file (every channel and the mix), else the one channel it marks.
    ALTER TABLE labels ADD COLUMN channel SMALLINT NOT NULL DEFAULT 0;
    CREATE OR REPLACE VIEW live_windows AS
        SELECT w.id, r.path AS root, m.path, s.name AS set_name, w.start_s, w.end_s, w.channel
        FROM windows w JOIN media m ON m.id = w.media_id JOIN roots r ON r.id = m.root_id
        JOIN sets s ON s.id = w.set_id WHERE w.alive;
    """,
}

SCHEMA_VERSION = max(MIGRATIONS)
# The sets table's columns, named in every insert (a migration adds its columns at the end).
SET_COLUMNS = "id, name, model, weights_id, window_s, hop_s, sample_rate, dim, dtype, created_at, channels"
# The last good copy of the catalog and its record (see ``backup``).
GOOD_COPY = "catalog.good.duckdb"
GOOD_RECORD = "catalog.good.json"
_RETRY_SECONDS = 10.0
# The longest pause between a waiting connection's tries (they start at 10 ms and double).
READER_RETRY_SECONDS = 0.25


_IN_PROCESS: dict[str, threading.RLock] = {}
_IN_PROCESS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.RLock:
    """One lock per catalog in this process: DuckDB refuses a read-write and a read-only
    connection to one file side by side in one process (the web page's threads do both)."""
    with _IN_PROCESS_GUARD:
        return _IN_PROCESS.setdefault(str(Path(path).resolve()), threading.RLock())


@contextmanager
def connect(path: Path, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection held only for the ``with`` block, retrying while another process has it."""
    with _process_lock(path):
        with _connect(path, read_only) as con:
            yield con


@contextmanager
def _connect(path: Path, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
    deadline = time.monotonic() + _RETRY_SECONDS
    delay = 0.01
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as err:
            first = str(err).splitlines()[0] if str(err) else ""
            if not is_lock_conflict(err):
                raise fault(path, err) from err
            if time.monotonic() > deadline:
                holder = _holder(first)
                raise StoreBusyError(f"the catalog {path} is held open for writing by {holder}; if that is a "
                                 "duckdb shell, close it or open the catalog with 'duckdb -readonly'") from err
            time.sleep(delay)
            delay = min(delay * 2, READER_RETRY_SECONDS)
    failure: duckdb.Error | None = None
    try:
        yield con
    except duckdb.Error as err:
        failure = err
    finally:
        try:
            con.close()
        except duckdb.Error:
            pass  # a damaged file can fail to close too; the error above is the one to report
    if failure is not None:
        raise fault(path, failure) from failure


# What DuckDB raises when the catalog's bytes cannot be read or written as its pages say: a
# copy cut short, zeroed pages, another file in its place, a disk that filled mid-write.
_DAMAGE = (duckdb.IOException, duckdb.InternalException, duckdb.SerializationException, duckdb.FatalException)
_DAMAGE_WORDS = ("corrupt", "checksum", "invalidated", "truncated", "failed to read", "could not read")
_FULL_WORDS = ("no space left", "disk full", "not enough space")
_DENIED_WORDS = ("read-only file system", "permission denied", "read only file system")


def fault_words(err: duckdb.Error) -> str | None:
    """What kind of fault DuckDB's error is by its type and words: "full", "denied", "damaged", or None
    (an error that says nothing of the file: a lock, a bug, or damage only a probe can tell)."""
    text = str(err).lower()
    if any(words in text for words in _FULL_WORDS):
        return "full"
    if any(words in text for words in _DENIED_WORDS):
        return "denied"
    if isinstance(err, _DAMAGE) or type(err) is duckdb.Error or any(words in text for words in _DAMAGE_WORDS):
        return "damaged"
    return None


def fault(path: Path, err: duckdb.Error) -> Exception:
    """The sentence for a DuckDB error met at ``path`` - a full disk, a folder that cannot be
    written, a damaged file - or ``err`` itself when the catalog reads and writes cleanly (then the
    error is a bug, and keeps its traceback)."""
    words = fault_words(err)
    if words == "denied":
        return StoreError(f"the store {path.parent} cannot be written ({_first(err)}); make the folder writable, "
                          "or use a store folder you own")
    if words is not None or damage(path.parent) is not None:
        return unreadable(path, err)
    return err


def _first(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__


def unreadable(path: Path, err: Exception) -> StoreError:
    """One sentence for a catalog DuckDB cannot read or write, at open or at any later query."""
    first = _first(err)
    if any(words in first.lower() for words in _FULL_WORDS):
        return StoreFullError(f"the disk holding {path.parent} is full ({first}); free some space and run the "
                          "command again (what was committed before is kept)")
    return damaged(path, first)


def damaged(path: Path, detail: str) -> StoreError:
    """One sentence for a catalog found damaged (``detail``: what DuckDB met), pointing at the way back."""
    return StoreError(f"the catalog {path} cannot be read ({detail}): it is damaged - a copy cut short, or a "
                      "disk that filled during a write; the vectors in sets/ and the journal of labels and "
                      "detectors are kept apart from it: run 'audioscan index repair' to rebuild it")


def _holder(message: str) -> str:
    """Who DuckDB says holds the file ("... held in /usr/bin/duckdb (PID 123)"), in words."""
    found = re.search(r"held in (\S+) \(PID (\d+)\)", message)
    return f"{Path(found.group(1)).name} (process {found.group(2)})" if found else "another program"


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The one way the store groups SQL: BEGIN, the body, COMMIT; ROLLBACK on any error.

    Writes change all or nothing; reads see one consistent catalog from first query to last.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # the connection is gone with its transaction; the first error is the one to report
        raise


def version(con: duckdb.DuckDBPyConnection) -> int:
    """The schema version of an open catalog (0 for an empty file)."""
    has_meta = scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'")
    if not has_meta:
        return 0
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def check_version(found: int, path: Path) -> None:
    """Refuse a catalog written by a newer audioscan: guessing could lose data."""
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"the store at {path.parent} was written by a newer audioscan (catalog schema v{found}, "
            f"this version reads up to v{SCHEMA_VERSION}); upgrade audioscan to use it"
        )


def migrate(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Bring the catalog to :data:`SCHEMA_VERSION`; returns the version it started at."""
    found = version(con)
    check_version(found, path)
    if found == 0 and scalar(con, "SELECT count(*) FROM information_schema.tables"):
        raise StoreError(f"{path} is a DuckDB database that audioscan did not create; "
                         "give `store` a folder of its own")
    for target in range(found + 1, SCHEMA_VERSION + 1):
        with transaction(con):
            con.execute(MIGRATIONS[target])
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)])
    return found


def self_check() -> dict[str, str]:
    """Run one query in an in-memory catalog and read it as Arrow: proves DuckDB and its
    pyarrow bridge load (``audioscan doctor``)."""
    import pyarrow

    con = duckdb.connect(":memory:")
    try:
        table = con.sql("SELECT 42 AS answer").to_arrow_table()
    finally:
        con.close()
    if table.column("answer").to_pylist() != [42]:
        raise StoreError(f"DuckDB {duckdb.__version__} answered a test query wrongly; its build is broken")
    return {"duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__}
