"""float16 vectors by default, float32 kept where a set has it, and a set converted in place by
``index compact --dtype``: crash-safe, checksummed, every vector within float16's reach and the
same hits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import audioscan
from audioscan.cli import main
from audioscan.errors import UserError
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import live_windows, vectors_by_window


def _dtype(store) -> str:
    with Store.open(store) as opened:
        return opened.find_set().dtype


def _segment_bytes(store) -> int:
    return sum(path.stat().st_size for path in (store / "sets").rglob("*") if path.is_file())


def test_a_new_set_keeps_float16_and_a_set_keeps_its_own(library, tmp_path):
    audioscan.open(tmp_path / "half").build(library)
    assert _dtype(tmp_path / "half") == "fp16"
    full = audioscan.open(tmp_path / "full")
    full.build(library, dtype="float32")
    full.build(library)  # the default again: the set stays as it was made
    assert _dtype(tmp_path / "full") == "fp32"
    assert _segment_bytes(tmp_path / "half") < 0.6 * _segment_bytes(tmp_path / "full")
    with pytest.raises(UserError, match="none of float16, float32"):
        full.build(library, dtype="half")


def test_compact_converts_a_set_in_place_with_every_vector_close_and_the_same_hits(library, tmp_path):
    store = tmp_path / "store"
    library_api = audioscan.open(store)
    library_api.build(library, dtype="float32")
    before, windows = vectors_by_window(store), live_windows(store)
    media = next(iter(before))[0]
    hits = [(h.path, h.start, h.end) for h in library_api.search((media, 4.0), k=5)]
    result = CliRunner().invoke(main, ["--store", str(store), "index", "compact", "--dtype", "float16"])
    assert result.exit_code == 0, result.output
    assert _dtype(store) == "fp16" and live_windows(store) == windows
    after = vectors_by_window(store)
    assert all(np.allclose(after[key], vector, rtol=2e-3, atol=2e-3) for key, vector in before.items())
    assert [(h.path, h.start, h.end) for h in audioscan.open(store).search((media, 4.0), k=5)] == hits
    with Store.open(store) as opened:
        assert check_store(opened) == []


def test_a_crash_while_converting_leaves_the_set_whole_in_its_old_dtype(library, tmp_path):
    store = tmp_path / "store"
    audioscan.open(store).build(library, dtype="float32")
    before = vectors_by_window(store)
    env = dict(os.environ, AUDIOSCAN_CRASH_AT="segment-written:1")
    crashed = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), "index", "compact",
                              "--dtype", "float16"], env=env, capture_output=True, timeout=120)
    assert crashed.returncode != 0
    assert _dtype(store) == "fp32"
    after = vectors_by_window(store)
    assert all(np.array_equal(after[key], vector) for key, vector in before.items())
    with Store.open(store) as opened:
        assert check_store(opened) == []
    assert CliRunner().invoke(main, ["--store", str(store), "index", "compact", "--dtype", "float16"]).exit_code == 0
    assert _dtype(store) == "fp16"
