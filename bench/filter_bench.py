"""Filter benchmark: a filtered rescore (one site's night hours) against the unfiltered one.

A synthetic field season: four sites, one-hour AudioMoth files (named by their UTC start, 3,600
windows each at 8 s / 1 s) around the clock, committed through the store API with clustered
vectors (no model runs).  A logistic detector is trained on a few labelled hours, then the
library is rescored whole and with ``--site site0 --hours 02:00-05:00``; both runs are timed warm
(the snapshot already taken), with the windows each scored.  Target: the filtered run scores
only its windows and takes a matching share of the time.

    .venv/bin/python bench/filter_bench.py [--windows 1000000] [--dim 128]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.api.moments import MomentFilter  # noqa: E402
from audioscan.indexer.build import BuildOptions  # noqa: E402
from audioscan.indexer.store.compact import compact_set  # noqa: E402
from audioscan.indexer.store.journal import SiteEntry  # noqa: E402
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402

PER_FILE = 3600
SITES = 4


def make_season(folder: Path, windows: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((64, dim)).astype(np.float32)
    first = dt.datetime(2024, 3, 1)
    with Store.open(folder, write=True) as store:
        info = store.ensure_set("SYNTH", f"synthetic-{dim}", window=8.0, hop=1.0, sample_rate=16_000, dim=dim)
        root = store.ensure_root(folder)
        change = Commit()
        for k in range(windows // PER_FILE):
            site, hour = k % SITES, k // SITES
            start = first + dt.timedelta(hours=hour)
            media_id = store.new_media_id()
            labels = np.repeat(rng.integers(0, 64, PER_FILE // 20 + 1), 20)[:PER_FILE]
            vectors = (centres[labels] + 0.7 * rng.standard_normal((PER_FILE, dim))).astype(np.float32)
            change.media.append(MediaRow(media_id, root, path=f"site{site}/{start:%Y%m%d_%H%M%S}.WAV", size=1,
                                         mtime_ns=1, fingerprint=f"{media_id}", duration=PER_FILE + 7.0, status="ok",
                                         recorded_local=start, recorded_zone="UTC", recorded_source="audiomoth"))
            times = np.arange(PER_FILE, dtype=np.float64)
            change.vectors.append(FileVectors(media_id, info.id, starts=times, ends=times + 8, vectors=vectors))
            if change.windows() >= BuildOptions.commit_windows:
                store.commit(change)
                change = Commit()
        store.commit(change)
        compact_set(store, info)
        store.set_sites([SiteEntry(f"site{s}", None, longitude=None) for s in range(SITES)],
                        [(str(folder / f"site{s}"), f"site{s}") for s in range(SITES)])


def timed(run) -> float:
    run()  # warm: the snapshot and the segments' pages
    clock = time.perf_counter()
    run()
    return time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        clock = time.perf_counter()
        make_season(folder, args.windows, args.dim)
        lib = audioscan.open(folder)
        print(f"{len(lib.snapshot())} windows x {args.dim} in {args.windows // PER_FILE} one-hour files at {SITES} "
              f"sites, built in {time.perf_counter() - clock:.0f} s")
        for name in ("site0/20240301_020000.WAV", "site1/20240301_030000.WAV"):
            lib.labels.add(name, 100, end=400, label="owl")
        lib.labels.add("site2/20240301_010000.WAV", 0, end=3000, label="owl", negative=True)
        detector = lib.train("owl", negatives="labelled")
        where = MomentFilter.parse(sites=["site0"], hours="02:00-05:00")
        whole = timed(lambda: detector.rescore(0.5))
        part = timed(lambda: detector.rescore(0.5, where=where))
        kept = len(detector.scores(where).ids)
        print(f"rescore, every window: {whole:.2f} s for {len(lib.snapshot())} windows")
        print(f"rescore --site site0 --hours 02:00-05:00: {part:.2f} s for {kept} windows "
              f"({kept / len(lib.snapshot()):.1%} of them, {part / whole:.1%} of the time)")


if __name__ == "__main__":
    main()
