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
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Callable, ContextManager, Iterator, Sequence

import duckdb
import pyarrow as pa

from filelock import FileLock

from audioscan.indexer.store import catalog, journal
from audioscan.indexer.store.journal import DetectorEntry, LabelEntry, SetEntry, Work
from audioscan.indexer.store.places import read_places, write_places
from audioscan.indexer.store.records import MIX_CHANNEL, NewLabel, utcnow
from audioscan.indexer.store.scalar import one_row, records, scalar
from audioscan.indexer.store.snapshot import MediaInfo

KEEP_VERSIONS = 5
# A classifier row's columns, named as ClassifierRow's fields (``blob``: the column, or NULL to leave it).
_CLASSIFIER_FIELDS = ("name, version, label, set_id, kind, model, {blob}, metrics, "
                      "CAST(created_at AS VARCHAR) AS created")
# Labels inserted per transaction: a million-row import becomes five short transactions.
LABEL_CHUNK = 200_000


@dataclass(frozen=True)
class Label:
    """A time range (or point marker) on a media file that does, or does not, hold a sound."""

    id: int
    media: MediaInfo
    _: KW_ONLY
    label: str
    start: float
    end: float
    kind: str  # range | marker
    positive: bool
    source: str | None
    channel: int = MIX_CHANNEL  # 0: the whole file; else the one channel (from 1) it marks

    def clock(self) -> str | None:
        """The label's start as its recorder's clock read it (ISO 8601), or None when its file's start is unknown."""
        return None if self.media.recorded is None else self.media.recorded.iso_at(self.start)

    def as_json(self) -> dict:
        return {"id": self.id, "path": self.media.path, "start": self.start, "end": self.end, "label": self.label,
                "kind": self.kind, "negative": not self.positive, "media_status": self.media.status,
                "source": self.source, "datetime": self.clock(), "site": self.media.site, "channel": self.channel}


@dataclass(frozen=True)
class ClassifierRow:
    name: str
    version: int
    _: KW_ONLY
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

    path: Path
    catalog_path: Path
    annotate: bool
    connect: Callable[[], ContextManager[duckdb.DuckDBPyConnection]]
    _media: Callable[[duckdb.DuckDBPyConnection], dict[int, MediaInfo]]

    @contextmanager
    def _edit(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One change to the user's work: a catalog transaction whose body also appends the change to
        the journal (see ``journal``) before it commits; a journal not yet started gets a snapshot of
        the work as the catalog holds it first."""

        if not self.annotate:
            raise RuntimeError("this Store was opened read-only; open it with annotate=True to change "
                               "labels or detectors")
        with journal_lock(self.path), catalog.connect(self.catalog_path, read_only=False) as con, \
                catalog.transaction(con):
            start_journal(self.path, con)
            yield con

    # ---------------------------------------------------------------- labels
    def add_labels(self, rows: Sequence[NewLabel], source: str) -> list[int]:
        """Insert labels, skipping exact duplicates (of
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

        fresh = list(dict.fromkeys(rows))
        added: list[int] = []
        for first in range(0, len(fresh), LABEL_CHUNK):
            if first:
                time.sleep(catalog.READER_RETRY_SECONDS + 0.05)  # a reader waiting for the catalog gets its turn
            chunk = fresh[first: first + LABEL_CHUNK]
            table = pa.table({"ord": pa.array(range(len(chunk)), pa.int64()),
                              "media_id": pa.array([r.media_id for r in chunk], pa.int64()),
                              "label": pa.array([r.label for r in chunk], pa.string()),
                              "start_s": pa.array([r.start for r in chunk], pa.float64()),
                              "end_s": pa.array([r.end for r in chunk], pa.float64()),
                              "kind": pa.array([r.kind for r in chunk], pa.string()),
                              "positive": pa.array([r.positive for r in chunk], pa.bool_()),
                              "channel": pa.array([r.channel for r in chunk], pa.int16())})
            with self._edit() as con:
                con.register("new_labels", table)
                try:
                    new_ids = [row[0] for row in con.execute(
                        "INSERT INTO labels (id, media_id, label, start_s, end_s, kind, positive, source, created_at, "
                        "channel) SELECT (SELECT coalesce(max(id), 0) FROM labels) + row_number() OVER "
                        "(ORDER BY n.ord), n.media_id, n.label, n.start_s, n.end_s, n.kind, n.positive, ?, ?, "
                        "n.channel "
                        "FROM new_labels n ANTI JOIN labels l ON l.media_id = n.media_id AND l.label = n.label "
                        "AND l.start_s = n.start_s AND l.end_s = n.end_s AND l.kind = n.kind "
                        "AND l.positive = n.positive AND l.channel = n.channel RETURNING id",
                        [source, utcnow()]).fetchall()]
                finally:
                    con.unregister("new_labels")
                if new_ids:
                    journal.append(self.path, {"op": "add_labels", "labels": [
                        entry.as_list() for entry in _label_entries(con, min(new_ids), max(new_ids))]})
            added += new_ids
        return sorted(added)

    def labels(self, label: str | None = None) -> list[Label]:
        """Every label (of one name), each with its media file as it is now."""
        with self.connect() as con:
            rows = con.execute("SELECT id, media_id, label, start_s, end_s, kind, positive, source, channel "
                               "FROM labels WHERE ? IS NULL OR label = ? "
                               "ORDER BY label, media_id, channel, start_s, id",
                               [label, label]).fetchall()
            media = self._media(con)
        return [Label(id=label_id, media=media[media_id], label=name, start=start, end=end, kind=kind,
                      positive=positive, source=source, channel=channel)
                for label_id, media_id, name, start, end, kind, positive, source, channel in rows]

    def remove_labels(self, ids: Sequence[int]) -> list[int]:
        """Delete labels by id; returns the ids that existed."""
        with self._edit() as con:
            found = [r[0] for r in con.execute("SELECT id FROM labels WHERE list_contains(?, id)",
                                               [list(ids)]).fetchall()]
            con.execute("DELETE FROM labels WHERE list_contains(?, id)", [list(ids)])
            if found:
                journal.append(self.path, {"op": "remove_labels", "ids": found})
        return found

    def rewrite_journal(self) -> None:
        """Write the journal anew as one snapshot of the work the catalog holds (repair, compaction)."""

        with journal_lock(self.path), catalog.connect(self.catalog_path, read_only=False) as con:
            journal.rewrite(self.path, read_work(con))

    def journal_problems(self) -> list[str]:
        """Where the journal and the catalog disagree about the user's work, as sentences."""
        replayed = journal.replay(self.path)
        with self.connect() as con:
            held = read_work(con)
        problems = []
        if replayed.damaged:
            problems.append(f"the journal of labels and detectors has {replayed.damaged} damaged line(s)")
        labels = set(held.labels) ^ set(replayed.work.labels)
        labels |= {key for key in set(held.labels) & set(replayed.work.labels)
                   if held.labels[key] != replayed.work.labels[key]}
        detectors = set(held.detectors) ^ set(replayed.work.detectors)
        places = (set(held.times.items()) ^ set(replayed.work.times.items())) | (
            set(held.sites.items()) ^ set(replayed.work.sites.items())) | (
            set(held.site_folders.items()) ^ set(replayed.work.site_folders.items()))
        if replayed.lines and (labels or detectors or places):
            problems.append(f"the journal and the catalog disagree on {len(labels)} label(s), {len(detectors)} "
                            f"detector version(s) and {len(places)} recording start(s) or site(s)")
        return problems

    # ---------------------------------------------------------------- classifiers
    def save_classifier(self, name: str, label: str, *, set_id: int, kind: str, model: str, blob: bytes | None,
                        metrics: dict) -> int:
        """Store the next version of classifier ``name``; keeps the newest few. Returns the version."""
        with self._edit() as con:
            next_id, version = one_row(
                con, "SELECT (SELECT coalesce(max(id), 0) + 1 FROM classifiers), "
                "(SELECT coalesce(max(version), 0) + 1 FROM classifiers WHERE name = ?)", params=[name])
            con.execute("INSERT INTO classifiers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [next_id, name, version, label, set_id, kind, model, blob, json.dumps(metrics), utcnow()])
            con.execute("DELETE FROM classifiers WHERE name = ? AND version <= ?", [name, version - KEEP_VERSIONS])
            entry = _detector_entries(con, "c.id = ?", [next_id])[0]
            journal.append(self.path, {"op": "add_detector", "detector": entry.as_json(),
                                       "keep_from": version - KEEP_VERSIONS + 1})
        return version

    def classifier(self, name: str, version: int | None = None) -> ClassifierRow | None:
        """The newest (or the given) version of a classifier, or None."""
        with self.connect() as con:
            found = records(ClassifierRow, con, sql=f"SELECT {_CLASSIFIER_FIELDS.format(blob='blob')} FROM classifiers "
                            "WHERE name = ? AND (? IS NULL OR version = ?) ORDER BY version DESC LIMIT 1",
                            params=[name, version, version])
        return found[0] if found else None

    def remove_classifier(self, name: str, version: int | None = None) -> int:
        """Delete one version of a classifier, or all of them; returns how many were deleted."""
        with self._edit() as con:
            count = scalar(con, "SELECT count(*) FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?)",
                           params=[name, version, version])
            con.execute("DELETE FROM classifiers WHERE name = ? AND (? IS NULL OR version = ?)", [name, version,
                                                                                                  version])
            if count:
                journal.append(self.path, {"op": "remove_detectors", "name": name, "version": version})
        return count

    def classifiers(self) -> list[ClassifierRow]:
        """Every kept version of every classifier (without tree blobs), by name and version."""
        with self.connect() as con:
            return records(ClassifierRow, con, sql=f"SELECT {_CLASSIFIER_FIELDS.format(blob='NULL AS blob')} "
                           "FROM classifiers ORDER BY name, version")


# ---------------------------------------------------------------- the work as the catalog holds it
_LABEL_COLUMNS = ("SELECT l.id, r.path, m.path, l.label, l.start_s, l.end_s, l.kind, l.positive, l.source, "
                  "CAST(l.created_at AS VARCHAR), l.channel FROM labels l JOIN media m ON m.id = l.media_id "
                  "JOIN roots r ON r.id = m.root_id")
_DETECTOR_COLUMNS = ("SELECT c.id, c.name, c.version, c.label, s.name, s.model, s.weights_id, s.window_s, s.hop_s, "
                     "s.sample_rate, s.dim, s.dtype, c.kind, c.model, c.blob, c.metrics, "
                     "CAST(c.created_at AS VARCHAR), s.channels FROM classifiers c JOIN sets s ON s.id = c.set_id")


def _label_entries(con: duckdb.DuckDBPyConnection, first: int | None = None, last: int | None = None
                   ) -> list[LabelEntry]:
    """Labels (with ids from ``first`` to ``last``, or all) as the journal keeps them."""
    rows = con.execute(f"{_LABEL_COLUMNS} WHERE ? IS NULL OR l.id BETWEEN ? AND ? ORDER BY l.id",
                       [first, first, last]).fetchall()
    return [LabelEntry.from_list(list(row)) for row in rows]


def _detector_entries(con: duckdb.DuckDBPyConnection, where: str = "true", values: Sequence = ()
                      ) -> list[DetectorEntry]:
    rows = con.execute(f"{_DETECTOR_COLUMNS} WHERE {where} ORDER BY c.name, c.version", list(values)).fetchall()
    return [DetectorEntry(id=row[0], name=row[1], version=row[2], label=row[3],
                          set=SetEntry(name=row[4], model=row[5], weights_id=row[6], window=row[7], hop=row[8],
                                       sample_rate=row[9], dim=row[10], dtype=row[11], channels=row[17]),
                          kind=row[12], model=row[13], blob=None if row[14] is None else bytes(row[14]),
                          metrics=row[15], created=row[16]) for row in rows]


def read_work(con: duckdb.DuckDBPyConnection) -> Work:
    """Every label, detector version, given recording start and site the catalog holds."""
    work = Work(labels={entry.id: entry for entry in _label_entries(con)},
                detectors={(entry.name, entry.version): entry for entry in _detector_entries(con)})
    read_places(con, work)
    return work


def journal_lock(folder: Path) -> FileLock:
    """Held by whoever changes the journal: a labelling process appending, or a repair rewriting it."""
    return FileLock(Path(folder) / journal.JOURNAL_LOCK, timeout=60, thread_local=False)


def start_journal(folder: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Begin the journal of a store that has none yet with the work its catalog holds."""
    if not journal.exists(folder):
        journal.rewrite(folder, read_work(con))


def write_work(con: duckdb.DuckDBPyConnection, work: Work) -> None:
    """Put ``work`` into a catalog that holds no labels or detectors yet, keeping every id.  A file
    or a set the catalog does not list is listed (a file as missing, a set with no windows), so no
    label or detector is dropped for want of it; the next build finds the file and fills the set."""
    roots = {path: rid for rid, path in con.execute("SELECT id, path FROM roots").fetchall()}
    media = {(rid, path): mid for mid, rid, path in con.execute("SELECT id, root_id, path FROM media").fetchall()}
    sets = {name: sid for sid, name in con.execute("SELECT id, name FROM sets").fetchall()}
    now = utcnow()

    def media_id(root: str, path: str) -> int:
        """The file at ``root``/``path``, listed as missing when the catalog lacks it."""
        if root not in roots:
            roots[root] = max(roots.values(), default=0) + 1
            con.execute("INSERT INTO roots VALUES (?, ?, ?)", [roots[root], root, now])
        key = (roots[root], path)
        if key not in media:
            media[key] = scalar(con, "SELECT next FROM id_counters WHERE name = 'media'")
            con.execute("UPDATE id_counters SET next = next + 1 WHERE name = 'media'")
            con.execute("INSERT INTO media (id, root_id, path, status, error, updated_at) VALUES "
                        "(?, ?, ?, 'missing', 'listed again by index repair for its labels', ?)",
                        [media[key], key[0], key[1], now])
        return media[key]

    label_rows = [(entry.id, media_id(entry.root, entry.path), entry.label, entry.start, entry.end, entry.kind,
                   entry.positive, entry.source, entry.created, entry.channel) for entry in work.labels.values()]
    write_places(con, work, media_id=media_id)
    if label_rows:
        columns = list(zip(*label_rows))
        table = pa.table({"id": pa.array(columns[0], pa.int64()), "media_id": pa.array(columns[1], pa.int64()),
                          "label": pa.array(columns[2], pa.string()), "start_s": pa.array(columns[3], pa.float64()),
                          "end_s": pa.array(columns[4], pa.float64()), "kind": pa.array(columns[5], pa.string()),
                          "positive": pa.array(columns[6], pa.bool_()), "source": pa.array(columns[7], pa.string()),
                          "created_at": pa.array(columns[8], pa.string()),
                          "channel": pa.array(columns[9], pa.int16())})
        con.register("restored_labels", table)
        try:
            con.execute("INSERT INTO labels (id, media_id, label, start_s, end_s, kind, positive, source, created_at, "
                        "channel) SELECT id, media_id, label, start_s, end_s, kind, positive, source, "
                        "CAST(created_at AS TIMESTAMP), channel FROM restored_labels")
        finally:
            con.unregister("restored_labels")
    for entry in work.detectors.values():
        described = entry.set
        if described.name not in sets:
            sets[described.name] = max(sets.values(), default=0) + 1
            con.execute(f"INSERT INTO sets ({catalog.SET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [sets[described.name], described.name, described.model, described.weights_id, described.window,
                         described.hop, described.sample_rate, described.dim, described.dtype, now, described.channels])
        con.execute("INSERT INTO classifiers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS TIMESTAMP))",
                    [entry.id, entry.name, entry.version, entry.label, sets[described.name], entry.kind, entry.model,
                     entry.blob, entry.metrics, entry.created])
