"""The query layer's tables: labels and trained classifiers.

Builds never read or write these tables, so they are changed without the writer
lock (a person can label while a long build runs); :meth:`Annotations._edit` is
the one place that rule is written.  DuckDB serialises the brief connections of
the two processes.  Ids are taken inside the inserting transaction, so two
labelling processes cannot collide either.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import duckdb
import pyarrow as pa

from audioscan.indexer.store.records import utcnow
from audioscan.indexer.store.snapshot import MediaInfo

ANNOTATION_TABLES = """
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
"""

KEEP_VERSIONS = 5
# Labels inserted per transaction: a million-row import becomes five short transactions.
LABEL_CHUNK = 200_000


@dataclass(frozen=True)
class Label:
    """A time range (or point marker) on a media file that does, or does not, hold a sound."""

    id: int
    media: MediaInfo
    label: str
    start: float
    end: float
    kind: str  # range | marker
    positive: bool
    source: str | None

    def as_json(self) -> dict:
        return {"id": self.id, "path": self.media.path, "start": self.start, "end": self.end, "label": self.label,
                "kind": self.kind, "negative": not self.positive, "media_status": self.media.status,
                "source": self.source}


@dataclass(frozen=True)
class ClassifierRow:
    name: str
    version: int
    label: str
    set_id: int
    kind: str
    model: str
    blob: bytes | None
    metrics: str
    created: str = ""


class Annotations:
    """Labels and detectors' classifiers, as named methods of the store (mixed into ``Store``,
    which provides what is declared here)."""

    catalog_path: Path
    annotate: bool
    connect: Callable[[], ContextManager[duckdb.DuckDBPyConnection]]
    _media: Callable[[duckdb.DuckDBPyConnection], dict[int, MediaInfo]]

    @contextmanager
    def _edit(self) -> Iterator[duckdb.DuckDBPyConnection]:
        from audioscan.indexer.store import catalog

        if not self.annotate:
            raise RuntimeError("this Store was opened read-only; open it with annotate=True to change "
                               "labels or detectors")
        with catalog.connect(self.catalog_path, read_only=False) as con, catalog.transaction(con):
            yield con

    # ---------------------------------------------------------------- labels
    def add_labels(self, rows: Sequence[tuple[int, str, float, float, str, bool]], source: str) -> list[int]:
        """Insert (media id, label, start, end, kind, positive) rows, skipping exact duplicates (of
        stored labels and of each other); returns the ids of the rows added.

        In bulk, whatever the count: the rows are laid out as Arrow tables first, and each
        transaction is a single INSERT that drops the rows already stored (an anti-join) and
        numbers the rest.  Past :data:`LABEL_CHUNK` rows the insert is split into transactions of
        that many, each well under a second, with a pause between them longer than a waiting
        reader's retry interval (a process that just let go of DuckDB's file lock would otherwise
        take it again before the reader's next try), so readers never wait long; the caller has checked
        every row before, and an import cut short by a crash is completed by running it again
        (the rows already in are skipped).
        """
        from audioscan.indexer.store import catalog  # catalog imports this module's table definitions

        fresh = list(dict.fromkeys((int(m), str(lb), float(a), float(b), str(k), bool(p))
                                   for m, lb, a, b, k, p in rows))
        added: list[int] = []
        for first in range(0, len(fresh), LABEL_CHUNK):
            if first:
                time.sleep(catalog.READER_RETRY_SECONDS + 0.05)  # a reader waiting for the catalog gets its turn
            chunk = fresh[first: first + LABEL_CHUNK]
            columns = list(zip(*chunk))
            table = pa.table({"ord": pa.array(range(len(chunk)), pa.int64()),
                              "media_id": pa.array(columns[0], pa.int64()), "label": pa.array(columns[1], pa.string()),
                              "start_s": pa.array(columns[2], pa.float64()), "end_s": pa.array(columns[3], pa.float64()),
                              "kind": pa.array(columns[4], pa.string()), "positive": pa.array(columns[5], pa.bool_())})
            with self._edit() as con:
                con.register("new_labels", table)
                try:
                    added += [row[0] for row in con.execute(
                        "INSERT INTO labels SELECT (SELECT coalesce(max(id), 0) FROM labels) + row_number() OVER "
                        "(ORDER BY n.ord), n.media_id, n.label, n.start_s, n.end_s, n.kind, n.positive, ?, ? "
                        "FROM new_labels n ANTI JOIN labels l ON l.media_id = n.media_id AND l.label = n.label "
                        "AND l.start_s = n.start_s AND l.end_s = n.end_s AND l.kind = n.kind "
                        "AND l.positive = n.positive RETURNING id", [source, utcnow()]).fetchall()]
                finally:
                    con.unregister("new_labels")
        return sorted(added)

    def labels(self, label: str | None = None) -> list[Label]:
        """Every label (of one name), each with its media file as it is now."""
        with self.connect() as con:
            rows = con.execute("SELECT id, media_id, label, start_s, end_s, kind, positive, source FROM labels "
                               "WHERE ? IS NULL OR label = ? ORDER BY label, media_id, start_s, id",
                               [label, label]).fetchall()
            media = self._media(con)
        return [Label(label_id, media[media_id], *rest) for label_id, media_id, *rest in rows]

    def remove_labels(self, ids: Sequence[int]) -> list[int]:
        """Delete labels by id; returns the ids that existed."""
        with self._edit() as con:
            found = [r[0] for r in con.execute("SELECT id FROM labels WHERE list_contains(?, id)",
                                               [list(ids)]).fetchall()]
            con.execute("DELETE FROM labels WHERE list_contains(?, id)", [list(ids)])
        return found

    # ---------------------------------------------------------------- classifiers
    def save_classifier(self, name: str, label: str, set_id: int, kind: str, model: str, blob: bytes | None,
                        metrics: dict) -> int:
        """Store the next version of classifier ``name``; keeps the newest few. Returns the version."""
        with self._edit() as con:
            next_id, version = con.execute(
                "SELECT (SELECT coalesce(max(id), 0) + 1 FROM classifiers), "
                "(SELECT coalesce(max(version), 0) + 1 FROM classifiers WHERE name = ?)", [name]).fetchone()
            con.execute("INSERT INTO classifiers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [next_id, name, version, label, set_id, kind, model, blob, json.dumps(metrics), utcnow()])
            con.execute("DELETE FROM classifiers WHERE name = ? AND version <= ?", [name, version - KEEP_VERSIONS])
        return version

    def classifier(self, name: str, version: int | None = None) -> ClassifierRow | None:
        """The newest (or the given) version of a classifier, or None."""
        with self.connect() as con:
            row = con.execute(
                "SELECT name, version, label, set_id, kind, model, blob, metrics, CAST(created_at AS VARCHAR) "
                "FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?) ORDER BY version DESC LIMIT 1",
                [name, version, version]).fetchone()
        return ClassifierRow(*row) if row else None

    def remove_classifier(self, name: str, version: int | None = None) -> int:
        """Delete one version of a classifier, or all of them; returns how many were deleted."""
        with self._edit() as con:
            count = con.execute("SELECT count(*) FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?)",
                                [name, version, version]).fetchone()[0]
            con.execute("DELETE FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?)", [name, version, version])
        return count

    def classifiers(self) -> list[ClassifierRow]:
        """Every kept version of every classifier (without tree blobs), by name and version."""
        with self.connect() as con:
            rows = con.execute("SELECT name, version, label, set_id, kind, model, NULL, metrics, "
                               "CAST(created_at AS VARCHAR) FROM classifiers ORDER BY name, version").fetchall()
        return [ClassifierRow(*row) for row in rows]
