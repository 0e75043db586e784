"""What the Ray engine's tests share: a build through the CLI, the lines Ray wrote, a store's
failures, and two stores held equal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.status import store_status
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import live_windows, vectors_by_window


def ray_build(store: Path, root: Path, *extra: str, crash_at: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, AUDIOSCAN_CRASH_AT=crash_at)
    return subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), "index", "build", str(root),
                           "--engine", "ray", "--ray-cpus", "2", "--batch-size", "4", *extra],
                          env=env, capture_output=True, text=True, timeout=240)


# A line of Ray's own: its core's log ("[2026-01-01 10:00:00,123 E 12 34] core_worker.cc:2465: ..."), its Python
# loggers ("2026-01-01 10:00:00,123 INFO worker.py:1841 -- ..."), its warnings, and what its processes print
# ("(raylet) ...", "(pid=12) ...", "[state-dump] ...").
RAY_LINE = re.compile(r"^\s*(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z] \d+ \d+\]"
                       r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+[A-Z]+ \S+\.py:\d+ --"
                       r"|\((raylet|pid=|\w+ pid=)|\[state-dump\]|.*Ray\w*Warning:)")


def ray_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines of a build's output that Ray wrote: none, the output being audioscan's alone."""
    return [line for line in (result.stdout + result.stderr).splitlines() if RAY_LINE.match(line)]


def failures(store: Path) -> dict[str, str]:
    with Store.open(store) as opened:
        return {item["path"]: item["error"] for item in store_status(opened)["failed"]}


def assert_same_store(store: Path, reference: Path) -> None:
    assert live_windows(store) == live_windows(reference)
    ours, theirs = vectors_by_window(store), vectors_by_window(reference)
    for key, vector in theirs.items():
        other = ours[key]
        cosine = float(vector @ other / (np.linalg.norm(vector) * np.linalg.norm(other)))
        assert cosine >= 0.9999, f"{key}: cosine {cosine}"
    with Store.open(store) as opened:
        assert check_store(opened) == []
