"""A build SIGKILLed at any moment leaves a store that opens, checks clean, and resumes
to exactly the windows of an uninterrupted build: none lost, none duplicated."""

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import numpy as np
import pytest

from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import live_windows, vectors_by_window


def _build(store, root, crash_at=None, wait=True):
    env = dict(os.environ, AUDIOSCAN_CRASH_AT=crash_at or "")
    cmd = [sys.executable, "-m", "audioscan", "--store", str(store), "-q", "index", "build", str(root),
           "--commit-every", "0", "--batch-size", "4"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if wait:
        proc.wait(timeout=240)
    return proc


def _assert_whole_files_only(partial, reference):
    """After a crash every file has all of its windows or none of them."""
    by_file, ref_by_file = defaultdict(set), defaultdict(set)
    for row in partial:
        by_file[row[1]].add(row)
    for row in reference:
        ref_by_file[row[1]].add(row)
    for path, rows in by_file.items():
        assert rows == ref_by_file[path], f"{path} is half-committed"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, library_template):
    store = tmp_path_factory.mktemp("ref") / "store"
    clock = time.monotonic()
    proc = _build(store, library_template)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return live_windows(store), vectors_by_window(store), time.monotonic() - clock


@pytest.mark.parametrize("crash_at", ["segment-written:1", "segment-written:4", "committed:3", "embedded:2",
                                      "embedded:9"])
def test_killed_at_a_crash_point_then_resumed(tmp_path, library_template, reference, crash_at):
    store = tmp_path / "store"
    proc = _build(store, library_template, crash_at)
    assert proc.returncode == -signal.SIGKILL
    _check_then_resume(store, library_template, reference)


@pytest.mark.parametrize("fraction", [0.6, 0.85])
def test_killed_at_a_timed_moment_then_resumed(tmp_path, library_template, reference, fraction):
    """A plain SIGKILL from outside, late enough to land while files are being embedded
    (the build's own duration, measured by the reference run, sets the moment)."""
    store = tmp_path / "store"
    proc = _build(store, library_template, wait=False)
    time.sleep(reference[2] * fraction)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    _check_then_resume(store, library_template, reference)


def _check_then_resume(store, root, reference):
    windows, vectors, _ = reference
    if (store / "catalog.duckdb").exists():
        with Store.open(store) as opened:
            assert check_store(opened) == []
        _assert_whole_files_only(live_windows(store), windows)
    proc = _build(store, root)
    assert proc.returncode == 0, proc.stderr.read().decode()
    assert live_windows(store) == windows
    resumed = vectors_by_window(store)
    assert resumed.keys() == vectors.keys()
    assert all(np.allclose(resumed[key], vectors[key], atol=1e-5) for key in vectors)
    with Store.open(store) as opened:
        assert check_store(opened) == [] and opened.unlisted_files() == []


def test_files_a_killed_first_build_never_reached_are_counted_behind(library, store_path):
    """Files that an interrupted first build planned but never committed are not in the catalog's
    media; status still counts them, and the next build clears them."""
    from audioscan.api import Library

    assert _build(store_path, library, "embedded:2").returncode == -signal.SIGKILL  # killed mid-way
    status = Library(store_path).status()
    with Store.open(store_path) as store:
        with store.connect() as con:
            planned = con.execute("SELECT count(*) FROM planned").fetchone()[0]
    assert planned > 0 and status["sets"][0]["behind"] >= planned
    Library(store_path).build(library)
    assert Library(store_path).status()["sets"][0]["behind"] == 0
