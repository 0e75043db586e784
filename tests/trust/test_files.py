"""The store never deletes or opens what it did not create, and two writers never collide."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from audioscan.indexer.errors import StoreError
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.conftest import tone_file
from tests.indexer.helpers import build_once, commit_synthetic


def test_a_folder_of_user_files_is_refused_and_left_alone(tmp_path):
    folder = tmp_path / "v"
    (folder / "sets" / "mine").mkdir(parents=True)
    keep = [folder / "notes.txt", folder / "sets" / "mine" / "seg-00000001.faiss"]
    for path in keep:
        path.write_text("user data")
    with pytest.raises(StoreError, match="not an audioscan store"):
        with Store.open(folder, write=True):
            pass
    assert all(path.read_text() == "user data" for path in keep)


def test_files_in_set_folders_that_are_not_ours_are_never_deleted(store_path):
    with Store.open(store_path, write=True) as store:
        info = store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
        commit_synthetic(store, "a.wav", 3)
    folder = store_path / "sets" / info.name
    foreign = [folder / "holiday.mp4", folder / "seg-1.faiss", folder / "seg-00000001.faiss.bak"]
    for path in foreign:
        path.write_text("user data")
    with Store.open(store_path, write=True):
        pass
    assert all(path.exists() for path in foreign)


def test_a_crafted_catalog_cannot_reach_outside_the_store(tmp_path, store_path):
    with Store.open(store_path, write=True) as store:
        info = store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
        commit_synthetic(store, "a.wav", 3)
    victim = tmp_path / "victim.faiss"
    victim.write_text("precious")
    con = duckdb.connect(str(store_path / "catalog.duckdb"))
    con.execute("UPDATE segments SET file = '../../victim.faiss'")
    con.execute("INSERT INTO retired_files VALUES (?, '../../../victim.faiss', TIMESTAMP '2000-01-01', '..')",
                [info.id])
    con.close()
    with pytest.raises(StoreError, match="never writes"):
        with Store.open(store_path, write=True):
            pass
    with Store.open(store_path) as store:
        problems = check_store(store)
        with pytest.raises(StoreError, match="never writes"):
            store.snapshot(info).vectors()
    assert any("never writes" in p for p in problems)
    assert victim.read_text() == "precious"


def test_a_symlinked_sets_folder_is_refused(tmp_path, store_path):
    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
    elsewhere = tmp_path / "elsewhere"
    (store_path / "sets").rename(elsewhere)
    os.symlink(elsewhere, store_path / "sets")
    with pytest.raises(StoreError, match="symbolic link"):
        with Store.open(store_path, write=True):
            pass


def test_two_writers_whose_lock_was_deleted_never_share_ids_or_files(store_path):
    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
    with Store.open(store_path, write=True) as first:
        (store_path / "LOCK").unlink()  # someone "cleans up" the lock file during a build
        with Store.open(store_path, write=True) as second:
            assert first.token != second.token
            commit_synthetic(first, "a.wav", 3)
            commit_synthetic(second, "b.wav", 3)
            commit_synthetic(first, "c.wav", 3)
    with Store.open(store_path) as store:
        assert check_store(store) == []
        snapshot = store.snapshot(store.find_set())
        assert len(snapshot) == 9 and len(set(snapshot.ids.tolist())) == 9
        assert len({s.file for s in snapshot.segments}) == 3


def test_a_damaged_segment_is_a_sentence_and_repair_plus_build_restores_it(library, store_path):
    from click.testing import CliRunner

    from audioscan.cli import main

    build_once(store_path, library)
    segment = sorted((store_path / "sets").rglob("seg-*.faiss"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    segment.write_bytes(bytes(data))
    runner = CliRunner()
    checked = runner.invoke(main, ["--store", str(store_path), "index", "check"])
    assert checked.exit_code == 1 and "damaged" in checked.stderr and "Traceback" not in checked.output
    assert runner.invoke(main, ["--store", str(store_path), "index", "repair"]).exit_code == 0
    rebuilt = runner.invoke(main, ["--store", str(store_path), "index", "build", str(library), "--format", "json"])
    assert rebuilt.exit_code == 0
    assert runner.invoke(main, ["--store", str(store_path), "index", "check"]).exit_code == 0
    segment.unlink(missing_ok=True)
    for path in (store_path / "sets").rglob("seg-*.faiss"):
        path.write_bytes(b"")  # emptied
    searched = runner.invoke(main, ["--store", str(store_path), "search", "--from", "a.wav", "--at", "3"])
    assert searched.exit_code == 1 and "index repair" in searched.stderr


def test_a_catalog_held_open_by_a_duckdb_shell_is_a_sentence(store_path, monkeypatch):
    from audioscan.indexer.store import catalog

    with Store.open(store_path, write=True) as store:
        store.ensure_set("LOGMEL", "v", window=8.0, hop=1.0, sample_rate=16_000, dim=4)
    monkeypatch.setattr(catalog, "_RETRY_SECONDS", 0.3)
    import subprocess
    import sys

    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('open', flush=True); time.sleep(30)", str(store_path / "catalog.duckdb")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="duckdb -readonly"):
            with Store.open(store_path) as store:
                store.sets()
    finally:
        holder.kill()
        holder.wait()


def test_a_subfolder_named_like_the_store_is_not_indexed(tmp_path):
    media = tmp_path / "media"
    tone_file(media / "a.wav", 9, "siren")
    report = build_once(media / "lib.idx", media)
    assert report.files_seen == 1


@pytest.mark.parametrize("command", [["index", "status"], ["index", "check"], ["search", "--from", "long.mkv", "--at", "25"],
                                     ["labels", "list"], ["labels", "add", "long.mkv", "20", "30", "x"],
                                     ["index", "build", "MEDIA"], ["index", "compact"]])
def test_a_truncated_catalog_is_one_sentence_for_every_command(world, command):
    catalog = world / "store" / "catalog.duckdb"
    with catalog.open("r+b") as handle:
        handle.truncate(catalog.stat().st_size // 2)
    args = [str(world / "media") if part == "MEDIA" else part for part in command]
    result = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(world / "store"), *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-1500:]
    assert len(result.stderr.strip().splitlines()) == 1 and "is damaged" in result.stderr


def test_a_full_disk_during_a_build_is_one_sentence_and_costs_nothing(tmp_path, monkeypatch):
    from audioscan.api import Library
    from audioscan.indexer.store import segments

    media = tmp_path / "media"
    for number in range(3):
        tone_file(media / f"t{number}.wav", 10, "siren", seed=number)

    real_fsync = os.fsync

    def full(fd):  # the disk fills while a segment is written (other files still fit)
        if "/sets/" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(segments.os, "fsync", full)
    with pytest.raises(StoreError, match=r"is full \(\d+ MB for this segment\)"):
        Library(tmp_path / "store").build(media)
    monkeypatch.undo()
    with Store.open(tmp_path / "store") as store:
        assert check_store(store) == []
    assert not list((tmp_path / "store").rglob("*.tmp")) and not list((tmp_path / "store").rglob("*.faiss"))
    assert Library(tmp_path / "store").build(media).files_indexed == 3  # the next build does it all


def test_a_damaged_catalog_comes_back_with_the_labels_made_after_the_last_build(tmp_path):
    from audioscan.api import Library

    media = tmp_path / "media"
    for number in range(3):
        tone_file(media / f"t{number}.wav", 10, "siren", seed=number)
    store = tmp_path / "store"
    library = Library(store)
    library.build(media)
    library.labels.add("t0.wav", 1, end=3, label="kept")  # labels are not a build: the copy predates them
    catalog = store / "catalog.duckdb"
    with catalog.open("r+b") as handle:
        handle.truncate(catalog.stat().st_size // 2)

    def audioscan(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), *args],
                              capture_output=True, text=True, timeout=120)

    damaged = audioscan("index", "status")
    assert damaged.returncode == 1 and "audioscan index repair" in damaged.stderr
    repaired = audioscan("index", "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "restored 1 labels and 0 detectors (0 versions); lost: none" in repaired.stderr
    assert list(store.glob("catalog.duckdb.damaged-*"))
    assert audioscan("index", "check").returncode == 0
    assert Library(store).status()["media"]["ok"] == 3
    assert [(item.media.path.endswith("t0.wav"), item.start, item.end, item.label) for item in Library(store).labels.list()
            ] == [(True, 1.0, 3.0, "kept")]
    again = Library(store).build(media)
    assert again.files_skipped == 3 and again.windows_embedded == 0  # nothing indexed is lost
