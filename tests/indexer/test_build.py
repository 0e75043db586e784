import os
import shutil

import numpy as np
import pytest

from audioscan.indexer import pipeline
from audioscan.indexer.build import BuildOptions, build
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.status import store_status
from audioscan.indexer.store.store import Store
from audioscan.models import logmel, registry
from audioscan.models.base import ModelSpec
from tests.indexer.helpers import build_once, live_windows, vectors_by_window

GOOD = {"a.wav", "b.flac", "c.mp3", "d.m4a", "folder with space/e.mp4", "f.mkv", "g.webm", "short.wav",
        "broken/truncated.mp3"}
BROKEN = {"broken/empty.wav", "broken/garbage.mp4", "broken/silent.flac", "broken/no-audio.mp4"}


def _no_model(*args, **kwargs):
    raise AssertionError("a model was loaded")


def test_first_build_indexes_every_good_file_and_records_each_broken_one(library, store_path):
    report = build_once(store_path, library)
    assert report.files_seen == len(GOOD | BROKEN)
    assert report.files_indexed == len(GOOD) and report.files_failed == len(BROKEN)
    windows = live_windows(store_path)
    assert {p for _, p, _, _ in windows} == GOOD
    assert sum(1 for _, p, _, _ in windows if p == "a.wav") == 5  # 12 s, 8 s windows, 1 s hop
    short = [w for w in windows if w[1] == "short.wav"]
    assert len(short) == 1 and short[0][2] == 0.0 and abs(short[0][3] - 3.0) < 1e-3
    assert report.windows_embedded == len(windows)
    with Store.open(store_path) as store:
        status = store_status(store)
        assert check_store(store) == []
    reasons = {item["path"].split("library/")[1]: item["error"] for item in status["failed"]}
    assert set(reasons) == BROKEN
    assert "empty" in reasons["broken/empty.wav"]
    assert "not a readable media file" in reasons["broken/garbage.mp4"]
    assert "silent" in reasons["broken/silent.flac"]
    assert "no audio stream" in reasons["broken/no-audio.mp4"]
    assert all("\n" not in reason for reason in reasons.values())


def test_a_rebuild_of_an_unchanged_folder_opens_no_file_and_loads_no_model(library, store_path, monkeypatch):
    build_once(store_path, library)
    before = live_windows(store_path)
    monkeypatch.setattr(registry, "load_model", _no_model)
    monkeypatch.setattr("indexer.plan.probe", _no_model)
    monkeypatch.setattr("indexer.plan.fingerprint", _no_model)
    report = build_once(store_path, library)
    assert (report.files_indexed, report.files_skipped, report.windows_embedded) == (0, len(GOOD | BROKEN), 0)
    assert live_windows(store_path) == before


def test_changed_deleted_and_moved_files(library, store_path, monkeypatch):
    build_once(store_path, library)
    first = vectors_by_window(store_path)
    # Changed: new content at the same path is re-embedded and its old windows die.
    from tests.conftest import tone_file
    tone_file(library / "c.mp3", 20, "chirp", 44_100, seed=50)
    report = build_once(store_path, library)
    assert report.files_indexed == 1 and report.windows_embedded == 13
    assert sum(1 for _, p, _, _ in live_windows(store_path) if p == "c.mp3") == 13
    # Deleted: its windows go; moved: vectors are kept and no model runs.
    os.remove(library / "d.m4a")
    (library / "renamed").mkdir()
    shutil.move(library / "a.wav", library / "renamed" / "a2.wav")
    monkeypatch.setattr(registry, "load_model", _no_model)
    report = build_once(store_path, library)
    assert (report.files_removed, report.files_reused, report.files_indexed) == (1, 1, 0)
    paths = {p for _, p, _, _ in live_windows(store_path)}
    assert "d.m4a" not in paths and "a.wav" not in paths and "renamed/a2.wav" in paths
    after = vectors_by_window(store_path)
    for (path, start), vector in first.items():
        if path == "a.wav":
            assert np.array_equal(after[("renamed/a2.wav", start)], vector)
    with Store.open(store_path) as store:
        assert check_store(store) == []
        assert store_status(store)["media"]["missing"] == 1


def test_a_touched_file_is_not_re_embedded(library, store_path, monkeypatch):
    build_once(store_path, library)
    os.utime(library / "b.flac", ns=(1, 1))
    monkeypatch.setattr(registry, "load_model", _no_model)
    report = build_once(store_path, library)
    assert report.files_skipped == len(GOOD | BROKEN) and report.windows_embedded == 0


def test_a_fixed_broken_file_is_indexed_on_the_next_build(library, store_path):
    build_once(store_path, library)
    from tests.conftest import tone_file
    tone_file(library / "broken" / "empty.wav", 9, "siren")
    report = build_once(store_path, library)
    assert report.files_indexed == 1
    with Store.open(store_path) as store:
        assert store_status(store)["media"]["failed"] == len(BROKEN) - 1


def _second_model() -> ModelSpec:
    """LOGMEL under another name at 8 kHz: a second set with its own rate."""
    class Half(logmel.LogMelModel):
        name, sample_rate = "HALF", 8_000

    return ModelSpec("HALF", logmel.DIM, sample_rate=8_000, source="test", build=lambda o, f: Half(), recipe="half-v1")


def test_several_models_share_one_decoding_pass(library, store_path, monkeypatch):
    monkeypatch.setitem(registry._SPECS, "HALF", _second_model())
    calls = []
    real = pipeline.decode_hearings
    monkeypatch.setattr(pipeline, "decode_hearings",
                        lambda path, hearings, *a, **k: calls.append(hearings) or real(path, hearings, *a, **k))
    report = build_once(store_path, library, models=["LOGMEL", "HALF"])
    assert len(calls) == report.files_indexed + 1  # the silent file fails only once decoded
    assert all(sorted(h.rate for h in hearings) == [8_000, 16_000] for hearings in calls)
    sets = {s for s, _, _, _ in live_windows(store_path)}
    assert sets == {"LOGMEL-w8-h1", "HALF-w8-h1"}
    with Store.open(store_path) as store:
        assert check_store(store) == []
    # Adding a model later embeds only that model's set.
    monkeypatch.setitem(registry._SPECS, "HALF2", ModelSpec("HALF2", logmel.DIM, sample_rate=8_000, source="t",
                                                            build=lambda o, f: _second_model().load(o), recipe="h2"))
    report = build_once(store_path, library, models=["LOGMEL", "HALF2"])
    assert report.files_indexed == len(GOOD) and report.windows_embedded == len(live_windows(store_path)) // 3


def test_windows_are_batched_across_files_and_vectors_do_not_depend_on_batching(library, store_path, tmp_path):
    build_once(store_path, library, batch_size=1)
    one = vectors_by_window(store_path)
    build_once(tmp_path / "other", library, batch_size=7, decode_workers=2)
    seven = vectors_by_window(tmp_path / "other")
    assert one.keys() == seven.keys()
    for key in one:
        assert np.allclose(one[key], seven[key], atol=1e-4)


def test_many_commits_then_compaction(library, store_path):
    with Store.open(store_path, write=True) as store:
        build(store, library, options=BuildOptions(commit_windows=1))
        info = store.find_set()
        segments = len(store.snapshot(info).segments)
        assert segments < len(GOOD)  # merged automatically after the build
        assert check_store(store) == []


def test_fp16_store_keeps_vectors_close(library, store_path, tmp_path):
    build_once(store_path, library, dtype="fp16")
    build_once(tmp_path / "fp32", library, dtype="fp32")
    half, full = vectors_by_window(store_path), vectors_by_window(tmp_path / "fp32")
    for key in full:
        assert np.allclose(half[key], full[key], rtol=2e-3, atol=2e-3)


def test_not_a_folder_is_refused(tmp_path, store_path):
    from audioscan.indexer.errors import StoreError
    (tmp_path / "file.wav").write_bytes(b"x")
    with pytest.raises(StoreError, match="not a folder"):
        build_once(store_path, tmp_path / "file.wav")


def test_new_files_are_hashed_by_the_decoding_thread_not_while_planning(library, store_path, monkeypatch):
    monkeypatch.setattr("indexer.plan.fingerprint", _no_model)  # planning a first build must not read whole files
    build_once(store_path, library)
    with Store.open(store_path) as store, store.connect() as con:
        hashes = con.execute("SELECT count(fingerprint) FROM media WHERE status = 'ok'").fetchone()[0]
    assert hashes == len(GOOD)


def test_the_summary_counts_the_windows_it_stored(library, store_path, monkeypatch):
    """Windows of a file that fails part-way are thrown away, and so not counted (they used to be)."""
    from audioscan.api import Library
    from audioscan.indexer.errors import MediaError

    real = pipeline.decode_hearings

    def fails_late(source, hearings, *args, **kwargs):
        blocks = real(source, hearings, *args, **kwargs)
        if not str(getattr(source, "name", source)).endswith("a.wav"):
            yield from blocks
            return
        yield from (block for _, block in zip(range(1), blocks))  # one block decodes, then the file breaks
        raise MediaError("it breaks off in the middle")

    monkeypatch.setattr(pipeline, "decode_hearings", fails_late)
    report = Library(store_path).build(library, batch_size=1)  # each window embedded as soon as it is cut
    with Store.open(store_path) as store:
        stored = sum(len(store.snapshot(info).ids) for info in store.sets())
    assert report.files_failed and report.windows_embedded == stored


def test_a_file_cut_short_is_indexed_with_a_warning(tmp_path):
    """A FLAC whose header declares 90 s but holds 3.5 s: its audio is indexed, and status says why
    there is so little of it."""
    from audioscan.api import Library
    from audioscan.indexer.media.samples import scene, write_media

    whole = write_media(tmp_path / "whole.flac",
                        scene(90, 16_000, background="noise", events=[("siren", 1, 80)], seed=3), rate=16_000)
    media = tmp_path / "media"
    media.mkdir()
    data = whole.read_bytes()
    (media / "cut.flac").write_bytes(data[: len(data) * 35 // 900])  # about 3.5 s of its 90
    library = Library(tmp_path / "store")
    report = library.build(media)
    status = library.status()
    assert report.files_indexed == 1 and status["media"]["ok"] == 1
    (warning,) = status["warnings"]
    assert warning["path"].endswith("cut.flac") and "declares 90.0 s" in warning["warning"]
    assert library.build(media).files_skipped == 1 and library.status()["warnings"] == status["warnings"]
