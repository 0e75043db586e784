"""Shared fixtures: real encoded media written at test time, and a store folder.

Nothing is downloaded: every file is synthesised and encoded with PyAV here.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from audioscan.indexer.media.samples import scene, synth, write_media, write_video_without_audio
from tests.indexer.helpers import build_once


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test that made it."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def tone_file(path: Path, seconds: float, kind: str = "siren", rate: int = 16_000, seed: int = 0,
              video: bool = False, stereo: bool = False) -> Path:
    """One encoded file of ``kind`` (see ``indexer.media.samples.synth``) over background noise."""
    audio = scene(seconds, rate, background="noise", events=[(kind, 0.0, seconds)] if kind else [], seed=seed)
    if stereo:
        audio = np.stack([audio, audio * 0.5])
    return write_media(path, audio, rate=rate, video=video)


# A scene to write: seconds, sample rate, background, (kind, start, end) events, seed.
Scene = tuple[float, int, str, list[tuple[str, float, float]], int]
# A street siren, a kitchen knock and forest chirps: the small library several query tests search.
STREET_KITCHEN_FOREST: dict[str, Scene] = {
    "street.mkv": (40, 48_000, "rain", [("siren", 20, 30)], 1),
    "kitchen.flac": (30, 44_100, "hum", [("knock", 5, 15)], 2),
    "forest.mp3": (30, 44_100, "rain", [("chirp", 0, 30)], 3),
}


def write_scenes(folder: Path, scenes: dict[str, Scene]) -> Path:
    """Write each named scene into ``folder`` (as its name's container), at its own rate."""
    for name, (seconds, rate, background, events, seed) in scenes.items():
        write_media(folder / name, scene(seconds, rate, background=background, events=events, seed=seed), rate=rate)
    return folder


def make_library(root: Path) -> dict[str, Path]:
    """A small library of every supported kind plus each broken kind; names say what they are."""
    files = {
        "wav": tone_file(root / "a.wav", 12, "siren", 16_000, seed=1),
        "flac": tone_file(root / "b.flac", 10, "chirp", 44_100, seed=2, stereo=True),
        "mp3": tone_file(root / "c.mp3", 9, "knock", 44_100, seed=3),
        "m4a": tone_file(root / "d.m4a", 10, "hum", 48_000, seed=4),
        "mp4": tone_file(root / "folder with space" / "e.mp4", 11, "siren", 48_000, seed=5, video=True),
        "mkv": tone_file(root / "f.mkv", 9, "knock", 48_000, seed=6, stereo=True),
        "webm": tone_file(root / "g.webm", 9, "chirp", 48_000, seed=7),
        "short": tone_file(root / "short.wav", 3, "siren", 16_000, seed=8),
    }
    broken = root / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "empty.wav").write_bytes(b"")
    (broken / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    truncated = tone_file(broken / "truncated.mp3", 10, "siren", 44_100, seed=9)
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    write_media(broken / "silent.flac", synth("silence", 9, rate=16_000), rate=16_000)
    write_video_without_audio(broken / "no-audio.mp4")
    (root / "notes.txt").write_text("not media\n")
    (root / ".hidden").mkdir(exist_ok=True)
    tone_file(root / ".hidden" / "secret.wav", 9, "siren", 16_000)
    files.update({"empty": broken / "empty.wav", "garbage": broken / "garbage.mp4",
                  "truncated": truncated, "silent": broken / "silent.flac", "no_audio": broken / "no-audio.mp4"})
    return files


@pytest.fixture(scope="session")
def library_template(tmp_path_factory) -> Path:
    """The library written once per session; tests copy it before changing anything."""
    root = tmp_path_factory.mktemp("template") / "library"
    make_library(root)
    return root


@pytest.fixture
def library(tmp_path, library_template) -> Path:
    import shutil

    root = tmp_path / "library"
    shutil.copytree(library_template, root)
    return root


@pytest.fixture
def store_path(tmp_path) -> Path:
    return tmp_path / "store"


# A small labelled world: files with sirens at known times, indexed once per session.
SIRENS = {"long.mkv": [(20, 30), (200, 210)], "other.flac": [(30, 40)]}


def make_world(root: Path) -> None:
    write_media(root / "long.mkv", scene(300, 48_000, background="rain", events=[("siren", 20, 30), ("siren", 200, 210),
                                                              ("knock", 100, 110)], seed=1), rate=48_000)
    write_media(root / "sub" / "other.flac", scene(60, 44_100, background="hum", events=[("siren", 30, 40)], seed=2),
                rate=44_100)
    write_media(root / "knock.mp3", scene(40, 44_100, background="noise", events=[("knock", 10, 20)], seed=3),
                rate=44_100)


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("world")
    make_world(base / "media")
    build_once(base / "store", base / "media", commit_windows=100)  # several segments
    return base


@pytest.fixture
def world(tmp_path, world_template) -> Path:
    """A private copy (labels and classifiers are written); returns the folder with media/ and store/."""
    shutil.copytree(world_template / "media", tmp_path / "media", copy_function=shutil.copy2)
    shutil.copytree(world_template / "store", tmp_path / "store")
    # The catalog records absolute media paths under the template; point the root at the copy.
    import duckdb
    con = duckdb.connect(str(tmp_path / "store" / "catalog.duckdb"))
    con.execute("UPDATE roots SET path = ?", [str((tmp_path / "media").resolve())])
    con.close()
    return tmp_path
