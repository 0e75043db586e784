"""The query layer's tables: labels and trained classifiers.

Builds never read or write these tables, so they are changed without the writer
lock (a person can label while a long build runs); :meth:`Annotations._edit` is
the one place that rule is written.  DuckDB serialises the brief connections of
the two processes.  Ids are taken inside the inserting transaction, so two
labelling processes cannot collide either.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import duckdb

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
        """Insert (media id, label, start, end, kind, positive) rows, skipping exact duplicates;
        returns the ids of the rows added."""
        added = []
        with self._edit() as con:
            for media_id, label, start, end, kind, positive in rows:
                same = con.execute("SELECT id FROM labels WHERE media_id = ? AND label = ? AND start_s = ? AND "
                                   "end_s = ? AND kind = ? AND positive = ?",
                                   [media_id, label, start, end, kind, positive]).fetchone()
                if same:
                    continue
                new_id = con.execute("SELECT coalesce(max(id), 0) + 1 FROM labels").fetchone()[0]
                con.execute("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [new_id, media_id, label, start, end, kind, positive, source, utcnow()])
                added.append(new_id)
        return added

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
