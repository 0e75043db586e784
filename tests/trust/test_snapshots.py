"""Readers see one snapshot: searches, trains and rescores during a busy build never fail.

One process builds over and over, committing every 0.1 s and forcing compaction
after each pass (so segment files are replaced under the readers' feet), while this
process runs 200 reads through the CLI and the Python API.  Every read must succeed
and see a committed state: each file with all of its windows or none, no window twice.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
from click.testing import CliRunner

import audioscan
from audioscan.cli import main
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.media.windows import WindowSpec, window_starts

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import audioscan
    from audioscan.indexer.media.samples import scene, write_media
    media, store, seconds = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    lib = audioscan.open(store)
    deadline, n = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        n += 1
        # new content for two files each pass: their old windows die, new ones arrive
        for name in ("churn-a.wav", "churn-b.flac"):
            write_media(media / name, scene(12 + n % 5, 16_000, background="noise", events=[("knock", 2, 6)], seed=n),
                        rate=16_000)
        lib.build(media, commit_every=0.1)
        lib.compact()
        print(n, flush=True)
""")


def _consistent(snapshot) -> None:
    """A committed state: every file has exactly its windows, none twice."""
    info = snapshot.info
    win, hop = WindowSpec(info.window, info.hop).samples(info.sample_rate)
    ids, counts = np.unique(snapshot.media_ids, return_counts=True)
    for media_id, count in zip(ids, counts):
        duration = snapshot.media[int(media_id)].duration
        assert count == len(window_starts(round(duration * info.sample_rate), win, hop=hop))
    assert len(np.unique(snapshot.ids)) == len(snapshot.ids)


def test_reads_during_a_build_that_commits_and_compacts_never_fail(tmp_path):
    media, store = tmp_path / "media", tmp_path / "store"
    for i in range(4):
        write_media(media / f"steady-{i}.wav", scene(20, 16_000, background="rain", events=[("siren", 5, 12)], seed=i),
                    rate=16_000)
    write_media(tmp_path / "clip.wav", scene(4, 16_000, background="rain", events=[("siren", 0, 4)], seed=9),
                rate=16_000)
    lib = audioscan.open(store)
    lib.build(media)
    lib.labels.add("steady-0.wav", 5, end=12, label="siren")
    lib.labels.add("steady-1.wav", 0, end=4, label="siren", negative=True)
    lib.labels.add("steady-2.wav", 14, end=20, label="siren", negative=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(media), str(store), "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runner = CliRunner()
    failures, passes_seen = [], 0
    try:
        assert writer.stdout.readline().strip() == "1"  # the writer is running and has committed
        for i in range(200):
            kind = i % 5
            try:
                if kind == 0:
                    result = runner.invoke(main, ["--store", str(store), "search", str(tmp_path / "clip.wav"),
                                                  "-k", "3", "--format", "json"])
                elif kind == 1:
                    result = runner.invoke(main, ["--store", str(store), "search", "--from", "steady-0.wav",
                                                  "--at", "8", "-k", "3"])
                elif kind == 2:
                    result = runner.invoke(main, ["--store", str(store), "train", "siren", "--format", "json"])
                elif kind == 3:
                    result = runner.invoke(main, ["--store", str(store), "rescore", "siren", "--threshold", "0"])
                else:
                    _consistent(lib.snapshot())
                    assert lib.search(("steady-1.wav", 3.0), k=2)
                    assert lib.detector("siren").rescore(threshold=0.0)
                    result = None
                if result is not None and result.exit_code != 0:
                    failures.append(f"{kind}: {result.output.strip()}")
            except Exception as err:  # noqa: BLE001 - every kind of failure is counted
                failures.append(f"{kind}: {type(err).__name__}: {err}")
        time.sleep(0)
    finally:
        writer.kill()
        out, err = writer.communicate()
        passes_seen = len(out.split())
    assert failures == [], failures[:5]
    assert passes_seen >= 2, err[-2000:]  # the store really changed under the readers
    with audioscan.open(store)._reader() as opened:
        from audioscan.indexer.store.check import check_store

        assert check_store(opened) == []
