"""Every command of the CLI against every fault of the machine, generated from the command tree.

A command added later is in the matrix without anyone remembering: the tree is walked, and a
command without a recipe here fails ``test_every_command_is_in_the_matrix``.  Each cell copies a
small labelled store with a trained detector, applies one fault, runs the command, and holds it
to the boundary: exit 0 or 1, no traceback, a sentence.  Then ``index repair`` runs, ``index
check`` must be clean, and the labels and detectors must be what they were before the fault (or
what the command itself made of them when it succeeded).

Disk full and read-only folders are real: the store (or the output folder) lives on a tmpfs of its
own, filled to leave a few bytes free at a time or remounted read-only, so DuckDB's own writes
meet the fault too.  Mounting needs root, as CI and the developers' machines have; elsewhere those
columns are skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Callable

import click
import pytest
from click.testing import CliRunner

from audioscan.api import Library
from audioscan.cli import main
from tests.conftest import tone_file

# How each command of the tree is run in a cell ({media}, {out}, {csv}, {vectors} are filled in per cell).
RECIPES: dict[str, list[str]] = {
    "classifiers": ["classifiers"],
    "classifiers remove": ["classifiers", "remove", "siren", "--version", "1", "--yes"],
    "detectors": ["detectors"],
    "detectors remove": ["detectors", "remove", "siren", "--yes"],
    "doctor": ["doctor"],
    "export clips": ["export", "clips", "--from-labels", "--out-dir", "{out}/clips"],
    "index build": ["index", "build", "{media}"],
    "index check": ["index", "check"],
    "index compact": ["index", "compact"],
    "index forget": ["index", "forget", "{media}/sub", "--yes"],
    "index remove-set": ["index", "remove-set", "LOGMEL", "--yes"],
    "index repair": ["index", "repair"],
    "index sites": ["index", "sites", "{sites}"],
    "index status": ["index", "status"],
    "index times": ["index", "times", "{times}"],
    "labels add": ["labels", "add", "a.wav", "5", "6", "siren", "--negative"],
    "labels import": ["labels", "import", "{csv}"],
    "labels list": ["labels", "list", "--format", "csv", "--out", "{out}/labels.csv"],
    "labels remove": ["labels", "remove", "1"],
    "models fetch": ["models", "fetch", "LOGMEL"],
    "models list": ["models", "list"],
    "rescore": ["rescore", "siren", "--format", "csv", "--out", "{out}/detections.csv"],
    "search": ["search", "--from", "a.wav", "--at", "4", "-k", "3"],
    "suggest": ["suggest", "siren", "-n", "2"],
    "train": ["train", "siren"],
    "vectors export": ["vectors", "export", "--out", "{out}/vectors.parquet", "--labels"],
    "vectors import": ["vectors", "import", "{vectors}", "--name", "imported", "--media-root", "{media}"],
}
# Commands outside this matrix, with the test that holds them to the same faults.
ELSEWHERE = {"serve": "tests/web/test_page_faults.py runs the page's routes against the same faults"}


def command_tree(command: click.Command = main, path: tuple[str, ...] = ()) -> list[str]:
    """Every command a user can run: leaves, and groups that do something by themselves."""
    found = []
    sub = getattr(command, "commands", None)
    if path and (not sub or getattr(command, "invoke_without_command", False)):
        found.append(" ".join(path))
    for name, child in sorted((sub or {}).items()):
        found += command_tree(child, (*path, name))
    return found


def test_every_command_is_in_the_matrix():
    assert set(command_tree()) == set(RECIPES) | set(ELSEWHERE)


# ------------------------------------------------------------------ the world every cell copies
@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("matrix")
    media = base / "media"
    tone_file(media / "a.wav", 12, "siren", seed=1)
    tone_file(media / "b.wav", 10, "knock", seed=2)
    tone_file(media / "sub" / "c.flac", 10, "siren", 22_050, seed=3)
    library = Library(base / "store")
    library.build(media, commit_every=0.0)
    library.labels.add("a.wav", 1, end=9, label="siren")
    library.labels.add("sub/c.flac", 1, end=9, label="siren")
    library.labels.add("b.wav", 0, end=10, label="siren", negative=True)
    library.train("siren")
    library.train("siren")
    (base / "import.csv").write_text("path,start,end,label\nb.wav,2,3,knock\n", encoding="utf-8")
    (base / "sites.csv").write_text("site,latitude,longitude,folder\nridge,52.5,13.4,media/sub\n", encoding="utf-8")
    (base / "times.csv").write_text("path,start,time zone\nb.wav,2024-10-27T02:30:00+01:00,Europe/Berlin\n",
                                    encoding="utf-8")
    library.export_vectors(base / "vectors.parquet")
    return base


def work_of(store: Path) -> tuple[frozenset, ...]:
    """The user's work in a store: labels, detector versions, given recording starts and sites, by what
    they are (not by row id or by where the copy lives)."""
    library = Library(store)
    labels = frozenset((item.media.rel, item.label, item.start, item.end, item.kind, item.positive)
                       for item in library.labels.list())
    detectors = frozenset((row["name"], row["version"], row["label"]) for row in library.detectors())
    times = frozenset((Path(row.path).name, row.start) for row in library.recordings.list() if row.source == "user")
    sites = frozenset((row.name, row.latitude, row.longitude, row.files) for row in library.recordings.sites())
    return labels, detectors, times, sites


def copy_world(template: Path, into: Path) -> dict[str, str]:
    shutil.copytree(template / "media", into / "media")
    shutil.copytree(template / "store", into / "store")
    shutil.copy(template / "import.csv", into / "import.csv")
    shutil.copy(template / "times.csv", into / "times.csv")
    shutil.copy(template / "sites.csv", into / "sites.csv")
    shutil.copy(template / "vectors.parquet", into / "vectors.parquet")
    (into / "out").mkdir(exist_ok=True)
    import duckdb

    for name in ("catalog.duckdb", "catalog.good.duckdb"):  # the copy's media live under the copy
        con = duckdb.connect(str(into / "store" / name))
        con.execute("UPDATE roots SET path = ?", [str((into / "media").resolve())])
        con.close()
    _refresh_good_record(into / "store")
    _point_journal_at(into / "store", template / "media", into / "media")
    return {"media": str(into / "media"), "out": str(into / "out"), "csv": str(into / "import.csv"),
            "vectors": str(into / "vectors.parquet"), "times": str(into / "times.csv"),
            "sites": str(into / "sites.csv")}


def _refresh_good_record(store: Path) -> None:
    import json

    from audioscan.indexer.store.segments import checksum

    record = store / "catalog.good.json"
    data = json.loads(record.read_text())
    data["checksum"] = checksum(store / "catalog.good.duckdb")
    record.write_text(json.dumps(data))


def _point_journal_at(store: Path, old: Path, new: Path) -> None:
    from audioscan.indexer.store import journal

    work = journal.replay(store).work
    for key, entry in list(work.labels.items()):
        work.labels[key] = type(entry)(**{**entry.__dict__, "root": str(new.resolve())}) \
            if entry.root == str(old.resolve()) else entry
    journal.rewrite(store, work)


def run(args: list[str], store: Path, where: dict[str, str]) -> object:
    filled = [part.format(**where) for part in args]
    return CliRunner().invoke(main, ["--store", str(store), "-q", *filled])


def assert_boundary(result, cell: str) -> None:
    """Exit 0 or 1, no traceback, and a failure says something."""
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{cell}: {type(result.exception).__name__}: {result.exception}\n{result.output[-2000:]}")
    assert result.exit_code in (0, 1), f"{cell}: exit {result.exit_code}\n{result.output[-2000:]}"
    assert "Traceback" not in result.output, f"{cell}:\n{result.output[-2000:]}"
    if result.exit_code == 1:
        assert result.stderr.strip(), f"{cell}: exit 1 with nothing said"


_EXPECTED: dict[str, tuple] = {}


def expected_after(command: str, template: Path, tmp_path_factory) -> tuple:
    """The work as the command leaves it when nothing goes wrong (computed once per command)."""
    if command not in _EXPECTED:
        base = tmp_path_factory.mktemp("clean")
        where = copy_world(template, base)
        result = run(RECIPES[command], base / "store", where)
        assert_boundary(result, f"{command} without a fault")
        _EXPECTED[command] = work_of(base / "store")
    return _EXPECTED[command]


def assert_repaired(store: Path, before: tuple, after: tuple, cell: str) -> None:
    where = {"media": "", "out": "", "csv": "", "vectors": ""}
    repaired = run(["index", "repair"], store, where)
    assert repaired.exit_code == 0, f"{cell}: repair failed: {repaired.output[-2000:]}"
    checked = run(["index", "check"], store, where)
    assert checked.exit_code == 0, f"{cell}: check after repair: {checked.output[-2000:]}"
    assert work_of(store) in (before, after), f"{cell}: the user's work changed"


# ------------------------------------------------------------------ faults of the store's files
def _truncate(fraction: float) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        catalog = store / "catalog.duckdb"
        with catalog.open("r+b") as handle:
            handle.truncate(int(catalog.stat().st_size * fraction))
    return apply


def _overwrite(fraction: float | None, offset: int = 0) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        catalog = store / "catalog.duckdb"
        at = offset if fraction is None else int(catalog.stat().st_size * fraction)
        with catalog.open("r+b") as handle:
            handle.seek(at)
            handle.write(os.urandom(1024))
    return apply


def _delete(*names: str) -> Callable[[Path], None]:
    def apply(store: Path) -> None:
        for name in names:
            (store / name).unlink()
    return apply


def _segment_missing(store: Path) -> None:
    sorted(store.glob("sets/*/seg-*.faiss"))[0].unlink()


FILE_FAULTS: dict[str, Callable[[Path], None]] = {
    "catalog truncated to half": _truncate(0.5),
    "catalog truncated to 20 KB": lambda store: _cut(store, 20_000),
    "catalog header overwritten": _overwrite(None, 4096),
    "catalog's first block overwritten": _overwrite(None, 12288 + 1024),
    "catalog overwritten at 40%": _overwrite(0.4),
    "catalog overwritten at 80%": _overwrite(0.8),
    "catalog deleted": _delete("catalog.duckdb"),
    "catalog and its copy deleted": _delete("catalog.duckdb", "catalog.good.duckdb"),
    "a segment file missing": _segment_missing,
}


def _cut(store: Path, size: int) -> None:
    with (store / "catalog.duckdb").open("r+b") as handle:
        handle.truncate(size)


def store_bytes(store: Path) -> dict[str, str]:
    """Every file of a store by content (the writer lock's own files aside)."""
    from audioscan.indexer.store.segments import checksum

    skip = {"LOCK", "WRITER", "annotations.journal.lock"}
    return {str(path.relative_to(store)): checksum(path) for path in sorted(store.rglob("*"))
            if path.is_file() and path.name not in skip}


class Column:
    """One fault against every command.  Repair is checked after each command that changed the
    store's files; after one that left them as the fault did, repair would meet the very same
    bytes, so the fault's own repair (checked once) stands for it."""

    def __init__(self, fault: str, template: Path, factory) -> None:
        self.fault, self.template, self.factory = fault, template, factory
        self.repaired_as_faulted = False

    def cell(self, command: str, base: Path, apply: Callable[[Path], None],
             undo: Callable[[], None] = lambda: None) -> None:
        """Copy the world into ``base``, ``apply`` the fault, run ``command``, ``undo`` the fault
        (free the disk, make the folder writable), then repair and compare."""
        where = copy_world(self.template, base)
        store = base / "store"
        before = work_of(store)
        try:
            apply(store)
            faulted = store_bytes(store)
            result = run(RECIPES[command], store, where)
        finally:
            undo()
        cell = f"{command} | {self.fault}"
        assert_boundary(result, cell)
        if store_bytes(store) == faulted:
            if self.repaired_as_faulted:
                return
            self.repaired_as_faulted = True
        assert_repaired(store, before, expected_after(command, self.template, self.factory), cell)


@pytest.mark.parametrize("fault", list(FILE_FAULTS))
def test_every_command_against_a_damaged_store(fault, template, tmp_path_factory):
    """The fault is applied afresh for each command: a command meets it, not another's repair."""
    column = Column(fault, template, tmp_path_factory)
    for command in sorted(RECIPES):
        base = tmp_path_factory.mktemp("cell")
        column.cell(command, base, FILE_FAULTS[fault])
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ a full disk and read-only folders
def _mount(folder: Path, size: int) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A tmpfs of its own for the cell's store (unmounted afterwards)."""
    folder = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    if os.geteuid() != 0 or not _mount(folder, 64 << 20):
        pytest.skip("a tmpfs cannot be mounted here (needs root): the full-disk and read-only cells need one")
    yield folder
    _umount(folder)


def _fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` so that ``leave`` bytes stay free."""
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    with open(disk / "filler", "wb") as handle:
        remaining = max(0, free - leave)
        block = b"\0" * (1 << 20)
        while remaining > 0:
            try:
                handle.write(block[: min(len(block), remaining)])
            except OSError:
                break
            remaining -= min(len(block), remaining)


# Free space left on the store's disk: each puts the first failing write at another site of a command.
FREE_BYTES = [0, 64 << 10, 2 << 20]


def _empty(folder: Path) -> None:
    for stale in folder.iterdir():
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()


def test_every_command_on_a_full_disk(template, tmp_path_factory, small_disk):
    for leave in FREE_BYTES:
        column = Column(f"disk full with {leave} bytes free", template, tmp_path_factory)
        for command in sorted(RECIPES):
            _empty(small_disk)
            column.cell(command, small_disk, lambda store: _fill(small_disk, leave),
                        undo=lambda: (small_disk / "filler").unlink(missing_ok=True))


@pytest.mark.parametrize("what", ["store", "out"])
def test_every_command_with_a_read_only_folder(what, template, tmp_path_factory, small_disk):
    column = Column(f"{what} folder read-only", template, tmp_path_factory)
    target = small_disk / what

    def read_only(store: Path) -> None:
        subprocess.run(["mount", "--bind", str(target), str(target)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)

    for command in sorted(RECIPES):
        _empty(small_disk)
        column.cell(command, small_disk, read_only, undo=lambda: _umount(target))
