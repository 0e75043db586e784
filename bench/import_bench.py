"""Label import benchmark: a million-row CSV into a store, and how long readers wait meanwhile.

Targets (issue 21): 1,000,000 rows in under 30 s; no concurrent ``index status`` waits 1 s or more.
A reader in another process (as a user's ``index status`` is) asks for the store's status over
and over while the import runs and records its longest wait; a 20,000-row import in the same run
is the baseline.

Run: ``.venv/bin/python bench/import_bench.py [--rows 1000000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import subprocess
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402

FILES, SECONDS = 20, 60


def make_library(folder: Path) -> list[str]:
    names = []
    for number in range(FILES):
        audio = scene(SECONDS, 16_000, background="noise", events=[("siren", 10, 20)], seed=number)
        names.append(write_media(folder / f"take{number:02d}.flac", audio, rate=16_000).name)
    return names


def write_rows(path: Path, names: list[str], count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0, SECONDS - 5, count).round(3)
    files = rng.integers(0, len(names), count)
    kinds = rng.integers(0, 4, count)
    with path.open("w") as out:
        out.write("path,start,end,label,negative\n")
        for file, start, kind in zip(files, starts, kinds):
            out.write(f"{names[file]},{start},{start + 2.5:.3f},sound{kind},{int(kind == 3)}\n")


_READER = """
import sys, time
from pathlib import Path
import audioscan
library, stop, waits = audioscan.open(sys.argv[1]), Path(sys.argv[2]), []
library.status()  # warm: imports and first connection are not what is measured
print("ready", flush=True)
while not stop.exists():
    clock = time.perf_counter()
    library.status()
    waits.append(time.perf_counter() - clock)
print(max(waits, default=0.0), len(waits))
"""


def timed_import(library: "audioscan.Library", csv_path: Path) -> tuple[float, float, int, int]:
    """(seconds, the longest wait of a status asked from another process meanwhile, statuses
    answered, labels added).  The reader is a process of its own, as a user's 'index status' is."""
    stop = csv_path.with_suffix(".stop")
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(library.path), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "ready"
    clock = time.perf_counter()
    report = library.labels.import_file(csv_path)
    seconds = time.perf_counter() - clock
    stop.touch()
    longest, asked = reader.communicate(timeout=120)[0].split()
    return seconds, float(longest), int(asked), report.added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = make_library(folder / "media")
        library = audioscan.open(folder / "store")
        library.build(folder / "media", models=["LOGMEL"])
        results = {}
        for count, seed in ((20_000, 1), (args.rows, 2)):
            csv_path = folder / f"rows-{count}.csv"
            write_rows(csv_path, names, count, seed)
            results[count] = timed_import(library, csv_path)
            seconds, longest, asked, added = results[count]
            print(f"{count:>9,} rows: imported in {seconds:.2f} s ({count / seconds:,.0f} rows/s), {added:,} new; "
                  f"a concurrent status answered {asked} times, longest wait {longest * 1000:.0f} ms")
        base, big = results[20_000][0], results[args.rows][0]
        print(f"ratio: {args.rows:,} rows took {big / base:.1f}x the 20,000-row import "
              f"({args.rows / 20_000:.0f}x the rows)")


if __name__ == "__main__":
    main()
