"""Ordinary accidents during builds: unmounted disks, one set failing, odd media, bad cuts."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from audioscan.cli import main
from audioscan.indexer import pipeline
from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.status import store_status
from audioscan.indexer.store.store import Store
from tests.conftest import tone_file
from tests.indexer.helpers import build_once, live_windows


def cli(store, *args):
    return CliRunner().invoke(main, ["--store", str(store), *args])


@pytest.fixture
def small(tmp_path):
    media = tmp_path / "media"
    tone_file(media / "a.wav", 10, "siren", seed=1)
    tone_file(media / "sub" / "b.flac", 9, "knock", seed=2)
    return media


def test_an_emptied_root_keeps_its_vectors_and_they_come_back_without_inference(small, store_path, tmp_path):
    build_once(store_path, small)
    before = live_windows(store_path)
    shutil.move(small, tmp_path / "away")
    small.mkdir()  # the mount point of a disk that is not mounted: an empty folder
    report = build_once(store_path, small)
    assert report.files_removed == 0 and report.files_unavailable == 2
    assert live_windows(store_path) == before
    with Store.open(store_path) as store:
        assert store_status(store)["media"]["unavailable"] == 2 and check_store(store) == []
    small.rmdir()
    shutil.move(tmp_path / "away", small)
    report = build_once(store_path, small)
    assert report.windows_embedded == 0 and report.files_unavailable == 0
    with Store.open(store_path) as store:
        assert store_status(store)["media"]["ok"] == 2
    assert live_windows(store_path) == before


def test_a_file_failing_for_a_new_set_keeps_its_other_sets_and_is_retried(small, store_path, monkeypatch):
    from audioscan.indexer.media.windows import WindowSpec

    build_once(store_path, small)
    real = pipeline._decode_one

    def unreadable_b(job, path, *args):
        if path.name == "b.flac":
            raise PermissionError(13, "Permission denied")
        return real(job, path, *args)

    monkeypatch.setattr(pipeline, "_decode_one", unreadable_b)
    report = build_once(store_path, small, windows=WindowSpec(4.0, 1.0))
    assert report.files_failed == 1
    windows = live_windows(store_path)
    assert sum(1 for s, p, _, _ in windows if p == "sub/b.flac" and s.endswith("w8-h1")) == 2
    monkeypatch.setattr(pipeline, "_decode_one", real)
    report = build_once(store_path, small, windows=WindowSpec(4.0, 1.0))
    assert report.files_indexed == 1
    with Store.open(store_path) as store:
        assert check_store(store) == [] and store_status(store)["media"]["failed"] == 0


@pytest.mark.parametrize("cut", [["--window", "0.001"], ["--window", "inf"], ["--window", "1e9"],
                                 ["--hop", "0"], ["--hop", "-1"], ["--window", "8", "--hop", "9"],
                                 ["--window", "nan"]])
def test_unusable_cuts_are_refused_before_anything_is_created(small, tmp_path, cut):
    store = tmp_path / "store"
    result = cli(store, "index", "build", str(small), *cut)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and not store.exists()


def _float_wav(path, samples: np.ndarray, rate: int = 16_000) -> None:
    data = samples.astype("<f4").tobytes()
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " +
              struct.pack("<IHHIIHH", 16, 3, 1, rate, rate * 4, 4, 32) + b"data" + struct.pack("<I", len(data)))
    path.write_bytes(header + data)


def test_nan_and_infinite_samples_never_reach_the_store(tmp_path, store_path):
    media = tmp_path / "media"
    media.mkdir()
    audio = scene(10, 16_000, background="noise", events=[("siren", 0, 10)], seed=4)
    audio[5000] = np.nan
    audio[9000:9010] = np.inf
    audio[12000] = 1e30
    _float_wav(media / "broken-float.wav", audio)
    report = build_once(store_path, media)
    assert report.files_indexed == 1
    with Store.open(store_path) as store:
        assert check_store(store) == []
        assert np.isfinite(store.snapshot(store.find_set()).vectors()).all()
    hits = cli(store_path, "search", "--from", "broken-float.wav", "--at", "2", "--format", "json")
    json.loads(hits.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))


@pytest.mark.parametrize("name,channels", [("surround.wav", 6), ("surround.mkv", 6), ("surround.mp4", 6),
                                          ("surround.flac", 6), ("eight.wav", 8), ("eight.flac", 8),
                                          ("seven-one.mkv", 8), ("seven-one.mp4", 8)])
def test_many_channel_audio_downmixes_without_crashing(tmp_path, name, channels):
    rate = 48_000
    planes = np.stack([np.full(rate, 0.1 * (i + 1), dtype=np.float32) for i in range(channels)])
    planes *= np.sin(np.linspace(0, 2000, rate, dtype=np.float32))
    path = write_media(tmp_path / name, planes, rate=rate)
    code = ("import sys; from pathlib import Path; from audioscan.indexer.media.decode import decode_all; "
            "a = decode_all(Path(sys.argv[1]), 16000); print(len(a), float(abs(a).max()))")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-500:]  # a segfault would be -11
    length, peak = result.stdout.split()
    assert abs(int(length) - 16_000) < 400 and float(peak) > 0.05


def test_a_file_name_that_is_not_utf8_is_stored_readably_and_found_again(tmp_path, store_path):
    media = tmp_path / "media"
    tone_file(media / "plain.wav", 9, "siren", seed=5)
    odd = os.fsencode(media) + b"/caf\xe9.wav"
    os.rename(tone_file(media / "tmp.wav", 9, "knock", seed=6), odd)
    assert build_once(store_path, media).files_indexed == 2
    paths = {p for _, p, _, _ in live_windows(store_path)}
    assert "caf\\xe9.wav" in paths
    assert build_once(store_path, media).windows_embedded == 0  # recognised again, not re-embedded
    assert len(decode_all(__import__("audioscan.indexer.media.discover", fromlist=["x"]).disk_name(
        "caf\\xe9.wav", media), 16_000)) > 0


def test_pictures_and_notes_are_not_media_and_do_not_trip_strict(small, tmp_path):
    import av

    with av.open(str(small / "cover.png"), "w", format="image2") as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "rgb24"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((8, 8, 3), np.uint8), format="rgb24")):
            out.mux(packet)
    (small / "show.nfo").write_text("<tvshow/>")
    (small / "ep.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    result = cli(tmp_path / "store", "index", "build", str(small), "--strict", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files_failed"] == 0


def test_dropping_a_root_takes_an_explicit_forget(small, store_path):
    build_once(store_path, small)
    refused = cli(store_path, "index", "forget", str(small))
    assert refused.exit_code == 2 and "--yes" in refused.output and live_windows(store_path)
    result = cli(store_path, "index", "forget", str(small / "sub"), "--yes")
    assert result.exit_code == 0 and "forgot 1 file" in result.stdout
    assert {p for _, p, _, _ in live_windows(store_path)} == {"a.wav"}
    assert cli(store_path, "index", "check").exit_code == 0
    assert build_once(store_path, small).files_indexed == 1  # still on disk: the next build brings it back
