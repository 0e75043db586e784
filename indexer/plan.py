"""Deciding what a build must do, from a directory listing and the catalog alone.

This is what makes a rebuild over an unchanged library take a blink: a file whose
size and mtime match its catalog row is settled without being opened.  Only new or
changed files are probed and hashed; a hash that matches a file that vanished from
its old path is a move, which keeps its vectors and costs no inference.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

from audioscan.indexer.media.decode import Probe, probe
from audioscan.indexer.media.discover import FileEntry, fingerprint
from audioscan.indexer.media.recorded import NOT_FOUND, found_start
from audioscan.indexer.store.records import Commit, MediaRow
from audioscan.indexer.store.store import Store


@dataclass(frozen=True)
class Job:
    """One media file to decode and embed into ``set_ids``.

    ``media`` is the row as it will be committed once the file is embedded (its
    fingerprint is None until the decoding thread hashes it); ``replaces`` says its
    older vectors (every set) die in the same commit.
    """

    media: MediaRow
    path: Path
    _: KW_ONLY
    set_ids: list[int]
    replaces: bool
    had_vectors: bool = False  # some set already holds this file's vectors (only sets are added)


@dataclass
class FileTally:
    """What a build found among the files, counted as the plan sorts them (the build's
    report carries the same tally, added to as files are embedded)."""

    files_seen: int = 0
    files_skipped: int = 0
    _: KW_ONLY
    files_reused: int = 0
    files_removed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    still_failing: int = 0
    unavailable: list[str] = field(default_factory=list)


@dataclass
class Plan(FileTally):
    _: KW_ONLY
    jobs: list[Job] = field(default_factory=list)
    bookkeeping: Commit = field(default_factory=Commit)


def make_plan(store: Store, root_id: int, *, entries: list[FileEntry], set_ids: list[int],
              unreadable: Sequence[str] = (), scope: str = "", selected: Callable[[str], bool] | None = None) -> Plan:
    """Sort every file under the root into skip, move, embed, fail, remove or unavailable.

    A file is removed (its windows dropped) only when the folder that held it was
    listed and it was not there.  Under a folder that could not be listed, or under a
    root that lists nothing at all (an unmounted disk looks like an empty folder), the
    files are *unavailable*: they keep their vectors and come back with no inference.
    Dropping a whole root is ``index forget``'s job, never an accident of a build.

    ``scope`` limits the plan to one subfolder of the root (``"sub/"``): a build of a
    folder inside an indexed root updates those files and leaves the others alone;
    ``selected`` (a test of relative paths: named files, include/exclude patterns) limits
    it further, and files it leaves out are neither indexed nor dropped.
    A new file whose content matches a file of another root that is no longer on
    disk is that file, moved (a renamed or re-mounted root): it keeps its id, vectors
    and labels.
    """
    planner = _Planner(store, root_id, set_ids=set_ids, on_disk={entry.rel for entry in entries},
                       in_scope=lambda path: path.startswith(scope) and (selected is None or selected(path)))
    for entry in entries:
        planner.visit(entry)
    planner.sweep_absent(root_unavailable=not entries or scope in unreadable, unreadable=unreadable)
    return planner.plan


def recorded_fields(rel: str, found: Probe) -> dict:
    """A media row's fields for the start a build finds for the file at ``rel`` from its name and what
    probing it read (``media.recorded``): looked for once per content, so a file without one is not
    opened again while unchanged."""
    start = found_start(rel.rsplit("/", 1)[-1], found.creation_time, comment=found.comment)
    if start is None:
        return {"recorded_local": None, "recorded_zone": None, "recorded_source": NOT_FOUND}
    return {"recorded_local": start.local, "recorded_zone": start.zone, "recorded_source": start.source}


class _Planner:
    """The steps of :func:`make_plan`, over what the catalog knows of one root."""

    def __init__(self, store: Store, root_id: int, *, set_ids: list[int], on_disk: set[str],
                 in_scope: Callable[[str], bool]) -> None:
        self.store, self.root_id, self.set_ids, self.on_disk = store, root_id, set_ids, on_disk
        self.plan = Plan()
        self.known = {path: row for path, row in store.media_of_root(root_id).items() if in_scope(path)}
        self.done = store.embedded_sets(root_id)
        self.not_media = store.non_media(root_id)
        # Files with live vectors whose path is gone: candidate sources of a move.
        self.vanished = {row.fingerprint: row for row in self.known.values()
                         if row.status == "ok" and row.fingerprint and row.path not in on_disk}
        self.vanished_sizes = {row.size for row in self.vanished.values()}
        self.elsewhere: dict[int | None, list[tuple[MediaRow, Path]]] = {}
        for row, folder in store.media_elsewhere(root_id):
            self.elsewhere.setdefault(row.size, []).append((row, folder))
        self.moved_ids: set[int] = set()

    def visit(self, entry: FileEntry) -> None:
        """Decide one listed file: settle it unopened, fail it, move it, or embed it."""
        plan, row, listed = self.plan, self.known.get(entry.rel), (entry.size, entry.mtime_ns)
        unchanged = row is not None and row.status != "missing" and (row.size, row.mtime_ns) == listed
        if row is not None and unchanged and row.status in ("ok", "unavailable"):
            plan.files_seen += 1
            if row.status == "unavailable" or row.recorded_source is None:
                # back from an unmounted disk (vectors kept, no inference), or indexed before starts were looked for
                looked = row if row.recorded_source else replace(row, **recorded_fields(entry.rel, probe(entry.abs)))
                row = replace(looked, status="ok", error=None)
                plan.bookkeeping.media.append(row)
            self._settle(row, entry)
            return
        if row is not None and unchanged and not row.retry:
            plan.files_seen += 1
            plan.files_skipped += 1  # unchanged and still broken: its recorded reason stands
            plan.still_failing += 1
            return
        if not row and self.not_media.get(entry.rel) == (entry.size, entry.mtime_ns):
            return
        found = probe(entry.abs)
        if not found.is_media and not row:
            plan.bookkeeping.non_media.append((self.root_id, entry.rel, entry.size, entry.mtime_ns))
            return
        plan.files_seen += 1
        if found.error or not found.is_media:
            self._fail(row, entry, found.error or "it is no longer a media file")
            return
        self._changed_or_moved(row, entry, recorded_fields(entry.rel, found))

    def _changed_or_moved(self, row: MediaRow | None, entry: FileEntry, recorded: dict) -> None:
        # Hashing reads every byte, so only when the answer can matter here: the file may be
        # an unchanged one touched, or a vanished one moved.  A new file is hashed by the
        # decoding thread, in the background, as part of indexing it.
        could_be_known = (row and row.status == "ok" and row.size == entry.size) or (
            not row and (entry.size in self.vanished_sizes or entry.size in self.elsewhere))
        try:
            digest = fingerprint(entry.abs) if could_be_known else None
        except OSError as err:
            self._fail(row, entry, f"cannot be read ({err.strerror or err})", retry=True)
            return
        if row and row.status == "ok" and row.fingerprint == digest:
            current = replace(row, size=entry.size, mtime_ns=entry.mtime_ns, **recorded)
            self.plan.bookkeeping.media.append(current)  # touched, not changed
            self._settle(current, entry)
            return
        source = self.vanished.pop(digest, None) if digest and not row else None
        if source is None and digest and not row:
            source = self._moved_from_elsewhere(digest, entry.size)
        if source is not None:
            self._move(replace(source, **recorded), entry)
            return
        media = MediaRow(row.id if row else self.store.new_media_id(), self.root_id, path=entry.rel, size=entry.size,
                         mtime_ns=entry.mtime_ns, fingerprint=digest, duration=None, status="ok", **recorded)
        self.plan.jobs.append(Job(media, entry.abs, set_ids=list(self.set_ids), replaces=row is not None))

    def _move(self, source: MediaRow, entry: FileEntry) -> None:
        """A vanished file found again under a new path: same id, vectors and labels."""
        self.moved_ids.add(source.id)
        moved = replace(source, root_id=self.root_id, path=entry.rel, size=entry.size, mtime_ns=entry.mtime_ns,
                        status="ok", error=None)
        self.plan.bookkeeping.media.append(moved)
        self.plan.files_reused += 1
        todo = self._missing_sets(moved)
        if todo:
            self.plan.jobs.append(Job(moved, entry.abs, set_ids=todo, replaces=False,
                                      had_vectors=bool(self.done.get(moved.id))))

    def sweep_absent(self, root_unavailable: bool, unreadable: Sequence[str]) -> None:
        """Known files not listed: unavailable under an unreadable folder, else gone (removed)."""
        plan = self.plan
        for row in self.known.values():
            if row.path in self.on_disk or row.status in ("missing", "unavailable") or row.id in self.moved_ids:
                continue
            if root_unavailable or any(row.path.startswith(folder) for folder in unreadable):
                if row.status == "ok":
                    plan.bookkeeping.media.append(replace(row, status="unavailable",
                                                          error="its folder could not be read (a disk not mounted?)"))
                    plan.unavailable.append(row.path)
                continue
            plan.bookkeeping.media.append(replace(row, status="missing", error="the file is gone from disk"))
            plan.bookkeeping.retire.append((row.id, None))
            plan.files_removed += 1

    def _moved_from_elsewhere(self, digest: str, size: int) -> MediaRow | None:
        for row, folder in self.elsewhere.get(size, []):
            if row.fingerprint == digest and row.id not in self.moved_ids and not (folder / row.path).exists():
                self.done[row.id] = self.store.embedded_sets_of(row.id)
                return row
        return None

    def _missing_sets(self, row: MediaRow) -> list[int]:
        have = self.done.get(row.id, set())
        return [sid for sid in self.set_ids if sid not in have]

    def _settle(self, row: MediaRow, entry: FileEntry) -> None:
        todo = self._missing_sets(row)
        if todo:
            self.plan.jobs.append(Job(row, entry.abs, set_ids=todo, replaces=False,
                                      had_vectors=bool(self.done.get(row.id))))
        else:
            self.plan.files_skipped += 1

    def _fail(self, row: MediaRow | None, entry: FileEntry, reason: str, retry: bool = False) -> None:
        media_id = row.id if row else self.store.new_media_id()
        self.plan.bookkeeping.media.append(MediaRow(media_id, self.root_id, path=entry.rel, size=entry.size,
                                                    mtime_ns=entry.mtime_ns, fingerprint=None, duration=None,
                                                    status="failed", error=reason, retry=retry))
        if row:
            self.plan.bookkeeping.retire.append((media_id, None))
        self.plan.failures.append((entry.rel, reason))
