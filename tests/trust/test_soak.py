"""Soak: random kills, broken locks, damaged segments and unmounted roots against one store.

Run by ``make soak`` (not by ``make test``): ``AUDIOSCAN_SOAK_SECONDS`` sets how long
(180 s by default).  After every step the store checks clean - after ``index
repair`` when a segment was damaged on purpose - and, once a build has finished,
every readable media file has all of its windows.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

import audioscan
from audioscan.indexer.media.samples import scene, write_media

pytestmark = pytest.mark.soak


def _build(store, media, kill_after: float | None = None) -> int:
    proc = subprocess.Popen([sys.executable, "-m", "audioscan", "--store", str(store), "-q", "index", "build",
                             str(media), "--commit-every", "0", "--batch-size", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=600)
    return proc.returncode


def _write(media, rng: random.Random, name: str) -> None:
    kind = rng.choice(["siren", "knock", "chirp", "hum"])
    seconds = rng.uniform(3, 25)
    rate = rng.choice([16_000, 44_100, 48_000])
    write_media(media / name,
                scene(seconds, rate, background="noise", events=[(kind, 0.5, seconds / 2)],
                      seed=rng.randrange(10**6)), rate=rate)


def test_soak(tmp_path):
    seconds = float(os.environ.get("AUDIOSCAN_SOAK_SECONDS", 180))
    rng = random.Random(int(os.environ.get("AUDIOSCAN_SOAK_SEED", 7)))
    media, store = tmp_path / "media", tmp_path / "store"
    names = [f"f{i:02d}.{ext}" for i, ext in enumerate(["wav", "flac", "mp3", "mkv", "m4a", "webm"] * 3)]
    for name in names:
        _write(media, rng, name)
    lib = audioscan.open(store)
    assert _build(store, media) == 0
    steps: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        action = rng.choice(["kill", "lock", "damage", "unmount", "change"])
        steps.append(action)
        if action == "kill":
            _write(media, rng, rng.choice(names))
            _build(store, media, kill_after=rng.uniform(0.3, 3.0))
        elif action == "lock":
            _write(media, rng, rng.choice(names))
            first = subprocess.Popen([sys.executable, "-m", "audioscan", "--store", str(store), "-q", "index",
                                      "build", str(media), "--commit-every", "0"], stderr=subprocess.PIPE)
            time.sleep(rng.uniform(0.2, 1.0))
            (store / "LOCK").unlink(missing_ok=True)
            _build(store, media)
            first.wait(timeout=600)
        elif action == "damage":
            snapshot = lib.snapshot()
            segments = [snapshot.segment_path(s) for s in snapshot.segments]  # live ones, not retired
            if segments:
                victim = rng.choice(segments)
                data = bytearray(victim.read_bytes())
                data[rng.randrange(len(data))] ^= 0xFF
                victim.write_bytes(bytes(data))
                problems, _ = lib.check()
                assert problems, "a flipped byte went unnoticed"
                lib.repair()
        elif action == "unmount":
            away = tmp_path / "away"
            shutil.move(media, away)
            media.mkdir()
            assert _build(store, media) == 0
            media.rmdir()
            shutil.move(away, media)
        else:
            _write(media, rng, rng.choice(names))
        assert lib.check()[0] == [], steps
        snapshot = lib.snapshot()  # reads work between the accidents
        if len(snapshot):
            assert lib.search((snapshot.media[int(snapshot.media_ids[0])].path, float(snapshot.starts[0])), k=3)
    assert _build(store, media) == 0
    problems, _ = lib.check()
    assert problems == [], steps
    indexed = {p.rsplit("/", 1)[-1] for p in lib.vectors()[1].column("path").to_pylist()}
    assert indexed == set(names), steps
    print(f"soak: {len(steps)} steps ({', '.join(sorted(set(steps)))}), store consistent after each")
