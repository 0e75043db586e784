"""A small labelled world: files with sirens at known times, indexed once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from audioscan.indexer.media.samples import scene, write_media
from tests.indexer.helpers import build_once

SIRENS = {"long.mkv": [(20, 30), (200, 210)], "other.flac": [(30, 40)]}


def make_world(root: Path) -> None:
    write_media(root / "long.mkv", scene(300, 48_000, "rain", [("siren", 20, 30), ("siren", 200, 210),
                                                              ("knock", 100, 110)], seed=1), 48_000)
    write_media(root / "sub" / "other.flac", scene(60, 44_100, "hum", [("siren", 30, 40)], seed=2), 44_100)
    write_media(root / "knock.mp3", scene(40, 44_100, "noise", [("knock", 10, 20)], seed=3), 44_100)


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
