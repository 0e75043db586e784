"""A file is its real path: subfolders, parent folders and renamed roots never index it twice."""

from __future__ import annotations

import audioscan
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.conftest import tone_file
from tests.indexer.helpers import build_once, live_windows


def _library(folder):
    tone_file(folder / "a.wav", 10, "siren", seed=1)
    tone_file(folder / "season1" / "ep01.wav", 9, "knock", seed=2)
    tone_file(folder / "season1" / "ep02.flac", 9, "chirp", seed=3)
    return folder


def _clean(store_path) -> None:
    with Store.open(store_path) as store:
        assert check_store(store) == []


def test_a_subfolder_of_an_indexed_root_is_not_indexed_twice(tmp_path, store_path):
    media = _library(tmp_path / "media")
    build_once(store_path, media)
    before = live_windows(store_path)
    report = build_once(store_path, media / "season1")
    assert report.windows_embedded == 0 and report.files_removed == 0 and report.files_skipped == 2
    assert live_windows(store_path) == before
    _clean(store_path)


def test_a_parent_folder_adopts_the_roots_inside_it(tmp_path, store_path):
    media = _library(tmp_path / "media")
    build_once(store_path, media / "season1")
    report = build_once(store_path, media)
    assert report.files_indexed == 1 and report.windows_embedded == 3  # only a.wav is new
    paths = sorted({p for _, p, _, _ in live_windows(store_path)})
    assert paths == ["a.wav", "season1/ep01.wav", "season1/ep02.flac"]
    _clean(store_path)


def test_a_renamed_root_keeps_vectors_and_labels_and_drops_the_old_paths(tmp_path, store_path):
    old = _library(tmp_path / "disk-old")
    lib = audioscan.open(store_path)
    lib.build(old)
    lib.labels.add("season1/ep01.wav", 1, end=5, label="knock")
    new = old.rename(tmp_path / "disk-new")
    report = lib.build(new)
    assert report.windows_embedded == 0 and report.files_reused == 3
    hits = lib.search((str(new / "a.wav"), 2.0), k=10)
    assert all(h.path.startswith(str(new)) for h in hits)
    assert len({(h.path, h.start) for h in hits}) == len(hits)
    label, = lib.labels.list("knock")
    assert label.media.path == str(new / "season1" / "ep01.wav")
    _clean(store_path)


def test_two_roots_may_hold_files_of_the_same_name(tmp_path, store_path):
    tone_file(tmp_path / "one" / "ep01.wav", 9, "siren", seed=1)
    tone_file(tmp_path / "two" / "ep01.wav", 9, "knock", seed=2)
    build_once(store_path, tmp_path / "one")
    build_once(store_path, tmp_path / "two")
    _clean(store_path)
