"""The journal of the user's work: every change to labels, detectors, given recording starts and
sites, kept beside the catalog.

Labels and detectors are minutes of someone listening each; vectors can be embedded again.
So every change to them is also appended to ``annotations.journal``, a file the catalog's
damage cannot take with it.  A line is ``<checksum> <json>``: the checksum (BLAKE2b, 64 bits)
covers the JSON, so a line cut short by a crash or changed on disk is recognised and skipped,
never half-applied.  Lines name media by root and path (not by catalog id) and detectors' sets
by their full description, so the work can be laid on any catalog the store can still build.

The line is appended and fsynced inside the catalog transaction that makes the change, after its
SQL has run and before COMMIT: every committed change is in the journal.  A change whose commit
then fails is in the journal and not in the catalog; ``index repair`` brings it back (kept rather
than lost), and ``index check`` notes the difference.

The first line of a journal is a snapshot of all the work, so replaying the journal alone gives
everything; ``index repair`` and ``index compact`` rewrite it as one snapshot (temporary name,
fsync, rename).  Measured cost: see ``bench/journal_bench.py`` and the README.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import KW_ONLY, asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from audioscan.indexer.store.segments import fsync_dir

JOURNAL_FILE = "annotations.journal"
JOURNAL_LOCK = "annotations.journal.lock"


@dataclass(frozen=True)
class LabelEntry:
    """One label as the journal keeps it: the file by root and path, so any catalog can place it."""

    id: int
    root: str
    _: KW_ONLY
    path: str
    label: str
    start: float
    end: float
    kind: str
    positive: bool
    source: str | None
    created: str | None
    channel: int = 0  # 0: the whole file; else the one channel (from 1) it marks

    def as_list(self) -> list:
        return [self.id, self.root, self.path, self.label, self.start, self.end, self.kind, self.positive,
                self.source, self.created, self.channel]

    @classmethod
    def from_list(cls, values: list) -> "LabelEntry":
        # journals written before channels hold ten fields: their labels are on whole files
        id_, root, path, label, start, end, kind, positive, source, created, channel = [*values, 0][:11]
        return cls(id=int(id_), root=str(root), path=str(path), label=str(label), start=float(start),
                   end=float(end), kind=str(kind), positive=bool(positive), source=source, created=created,
                   channel=int(channel))


@dataclass(frozen=True)
class SetEntry:
    """The embedding set a detector was trained on, described whole so a catalog that lost it
    can list it again (its windows come back with the next build)."""

    name: str
    model: str
    _: KW_ONLY
    weights_id: str
    window: float
    hop: float
    sample_rate: int
    dim: int
    dtype: str
    channels: str = "mix"  # journals written before channels describe mixed sets


@dataclass(frozen=True)
class DetectorEntry:
    """One version of a trained detector (its classifier row), with its set described."""

    id: int
    name: str
    _: KW_ONLY
    version: int
    label: str
    set: SetEntry
    kind: str
    model: str
    blob: bytes | None
    metrics: str
    created: str | None

    def as_json(self) -> dict:
        data = asdict(self)
        data["blob"] = None if self.blob is None else base64.b64encode(self.blob).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: dict) -> "DetectorEntry":
        blob = data.get("blob")
        return cls(id=int(data["id"]), name=str(data["name"]), version=int(data["version"]),
                   label=str(data["label"]), set=SetEntry(**data["set"]), kind=str(data["kind"]),
                   model=str(data["model"]), blob=None if blob is None else base64.b64decode(blob),
                   metrics=str(data["metrics"]), created=data.get("created"))


@dataclass(frozen=True)
class TimeEntry:
    """A recording start the user gave (``index times``), its file by root and path; ``local`` is ISO 8601."""

    root: str
    path: str
    _: KW_ONLY
    local: str
    zone: str | None
    fold: int = 0  # 1: the second time that wall time happened (a repeated autumn hour)

    def as_list(self) -> list:
        return [self.root, self.path, self.local, self.zone, self.fold]

    @classmethod
    def from_list(cls, values: list) -> "TimeEntry":
        root, path, local, zone, fold = values
        return cls(root=str(root), path=str(path), local=str(local), zone=None if zone is None else str(zone),
                   fold=int(fold))


@dataclass(frozen=True)
class SiteEntry:
    """A site the user named (``index sites``, ``index build --site``), with where it is and the zone its
    recorders' clocks keep, when given."""

    name: str
    latitude: float | None
    _: KW_ONLY
    longitude: float | None
    zone: str | None = None

    def as_list(self) -> list:
        return [self.name, self.latitude, self.longitude, self.zone]

    @classmethod
    def from_list(cls, values: list) -> "SiteEntry":
        name, latitude, longitude, zone = [*values, None][:4]  # journals written before zones hold three
        return cls(name=str(name), latitude=None if latitude is None else float(latitude),
                   longitude=None if longitude is None else float(longitude), zone=None if zone is None else str(zone))

    def over(self, known: "SiteEntry | None") -> "SiteEntry":
        """This site as stored over ``known``: what it leaves out (coordinates, zone) is kept."""
        if known is None:
            return self
        located = self.latitude is not None
        return SiteEntry(self.name, self.latitude if located else known.latitude,
                         longitude=self.longitude if located else known.longitude, zone=self.zone or known.zone)


@dataclass
class Work:
    """The user's work as a journal replays it: labels by id, detectors by (name, version), recording
    starts given by (root, path), sites by name and the folders named for them (absolute path -> site)."""

    labels: dict[int, LabelEntry] = field(default_factory=dict)
    detectors: dict[tuple[str, int], DetectorEntry] = field(default_factory=dict)
    _: KW_ONLY
    times: dict[tuple[str, str], TimeEntry] = field(default_factory=dict)
    sites: dict[str, SiteEntry] = field(default_factory=dict)
    site_folders: dict[str, str] = field(default_factory=dict)

    def apply(self, record: dict) -> None:
        """One journal line's change (the same change its catalog transaction made)."""
        op = record["op"]
        if op == "snapshot":
            self.labels, self.detectors, self.times, self.sites, self.site_folders = {}, {}, {}, {}, {}
        if op in ("snapshot", "give_times"):
            for values in record.get("times", []):
                given = TimeEntry.from_list(values)
                self.times[(given.root, given.path)] = given
        if op in ("snapshot", "set_sites"):
            for values in record.get("sites", []):
                site = SiteEntry.from_list(values)
                self.sites[site.name] = site.over(self.sites.get(site.name))
            self.site_folders.update({str(folder): str(site) for folder, site in record.get("folders", [])})
        if op in ("snapshot", "add_labels"):
            for values in record["labels"]:
                label = LabelEntry.from_list(values)
                self.labels[label.id] = label
        if op == "snapshot":
            for data in record["detectors"]:
                detector = DetectorEntry.from_json(data)
                self.detectors[(detector.name, detector.version)] = detector
        elif op == "remove_labels":
            for label_id in record["ids"]:
                self.labels.pop(int(label_id), None)
        elif op == "add_detector":
            added = DetectorEntry.from_json(record["detector"])
            self.detectors[(added.name, added.version)] = added
            for key in [key for key in self.detectors if key[0] == added.name and key[1] < record["keep_from"]]:
                del self.detectors[key]
        elif op == "remove_detectors":
            version = record["version"]
            for key in [key for key in self.detectors
                        if key[0] == record["name"] and (version is None or key[1] == version)]:
                del self.detectors[key]
        elif op == "remove_set":
            for key in [key for key, entry in self.detectors.items() if entry.set.name == record["set"]]:
                del self.detectors[key]

    def snapshot_record(self) -> dict:
        return {"op": "snapshot", "labels": [entry.as_list() for entry in self.labels.values()],
                "detectors": [entry.as_json() for entry in self.detectors.values()],
                "times": [entry.as_list() for entry in self.times.values()],
                "sites": [entry.as_list() for entry in self.sites.values()],
                "folders": [[folder, site] for folder, site in self.site_folders.items()]}

    def versions_by_detector(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, _ in self.detectors:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def merged_under(self, base: "Work") -> "Work":
        """This work laid over ``base``: what ``base`` holds that this does not is kept too (a
        journal with damaged lines may have lost a change the catalog still has)."""
        return Work(labels={**base.labels, **self.labels}, detectors={**base.detectors, **self.detectors},
                    times={**base.times, **self.times}, sites={**base.sites, **self.sites},
                    site_folders={**base.site_folders, **self.site_folders})


@dataclass(frozen=True)
class Replayed:
    """A journal read back: the work it holds, and whether it holds all of it."""

    work: Work
    lines: int
    _: KW_ONLY
    damaged: int  # lines whose checksum failed (skipped)
    complete: bool  # it starts with a snapshot and no line was damaged: it alone is the whole of the work


def _checksum(text: bytes) -> str:
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def encode(record: dict) -> bytes:
    """One journal line: checksum, a space, compact JSON, a newline."""
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return _checksum(body).encode("ascii") + b" " + body + b"\n"


def exists(folder: Path) -> bool:
    return (Path(folder) / JOURNAL_FILE).exists()


def append(folder: Path, record: dict) -> None:
    """Append one change durably (fsynced).  A journal whose last line a crash cut short gets a
    newline first, so the new line stands on its own and the cut one stays recognisably damaged."""
    path = Path(folder) / JOURNAL_FILE
    line = encode(record)
    with open(path, "ab+") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end:
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                line = b"\n" + line
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            _cut_back(handle, end)  # a full disk leaves no half line behind when it can
            raise


def _cut_back(handle, size: int) -> None:
    try:
        handle.truncate(size)
    except OSError:
        pass  # the half line stays; its checksum marks it damaged and replay skips it


def rewrite(folder: Path, work: Work) -> None:
    """Replace the journal by one snapshot of ``work`` (temporary name, fsync, rename)."""
    path = Path(folder) / JOURNAL_FILE
    tmp = path.with_name(JOURNAL_FILE + ".tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(encode(work.snapshot_record()))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(Path(folder))


def _lines(path: Path) -> Iterable[bytes]:
    with open(path, "rb") as handle:
        yield from handle


def replay(folder: Path) -> Replayed:
    """The work the journal at ``folder`` holds (an empty, incomplete one when there is none)."""
    path = Path(folder) / JOURNAL_FILE
    work = Work()
    if not path.exists():
        return Replayed(work=work, lines=0, damaged=0, complete=False)
    lines = damaged = 0
    starts_whole = False
    for raw in _lines(path):
        raw = raw.rstrip(b"\n")
        if not raw:
            continue
        lines += 1
        digest, _, body = raw.partition(b" ")
        try:
            if _checksum(body) != digest.decode("ascii"):
                raise ValueError("checksum")
            record = json.loads(body)
            work.apply(record)  # a line that passed its checksum is one this module wrote
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            damaged += 1
            continue
        if lines == 1 and record["op"] == "snapshot":
            starts_whole = True
    return Replayed(work=work, lines=lines, damaged=damaged, complete=starts_whole and not damaged)
