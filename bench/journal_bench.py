"""What keeping the user's work apart costs: the journal's price on a label, an import and a build.

Every change to labels and detectors is also appended (and fsynced) to ``annotations.journal``
(``indexer/store/journal.py``).  The baseline, in the same process, is the same store with the
journal's appends switched off, which is exactly the work the catalog alone did before the journal:
``labels add`` p50 over 200 adds, a 100,000-row ``labels import``, and a build that finds nothing
to do.

Run: ``.venv/bin/python bench/journal_bench.py [--rows 100000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402
from audioscan.indexer.store import journal  # noqa: E402

FILES, SECONDS = 10, 60


@contextmanager
def without_journal() -> Iterator[None]:
    """The catalog alone: appends and rewrites of the journal do nothing."""
    saved = journal.append, journal.rewrite
    journal.append = lambda folder, record: None
    journal.rewrite = lambda folder, work: None
    try:
        yield
    finally:
        journal.append, journal.rewrite = saved


def make_library(folder: Path) -> None:
    for number in range(FILES):
        write_media(folder / f"take{number:02d}.flac",
                    scene(SECONDS, 16_000, background="noise", events=[("siren", 10, 20)], seed=number), rate=16_000)


def write_rows(path: Path, count: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    starts = rng.uniform(0, SECONDS - 5, count).round(3)
    files = rng.integers(0, FILES, count)
    with path.open("w") as out:
        out.write("path,start,end,label,negative\n")
        for file, start in zip(files, starts):
            out.write(f"take{file:02d}.flac,{start},{start + 2.5:.3f},sound{file % 4},{int(file % 4 == 3)}\n")


def measure(store: Path, media: Path, rows: Path, adds: int) -> dict[str, float]:
    library = audioscan.open(store)
    library.build(media)
    times = []
    for number in range(adds):
        started = time.perf_counter()
        library.labels.add(f"take{number % FILES:02d}.flac", number % 50, end=number % 50 + 1.5, label="door")
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    library.labels.import_file(rows)
    imported = time.perf_counter() - started
    started = time.perf_counter()
    library.build(media)
    noop = time.perf_counter() - started
    return {"labels add p50 ms": statistics.median(times) * 1000, "import s": imported, "no-op build s": noop}


def best(kept: dict[str, float], new: dict[str, float]) -> None:
    for key, value in new.items():
        kept[key] = min(kept.get(key, value), value)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--adds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        make_library(base / "media")
        write_rows(base / "rows.csv", args.rows, seed=1)
        before: dict[str, float] = {}
        after: dict[str, float] = {}
        for round_ in range(2):  # alternate, keep each figure's best: the first run also pays warm-up
            with without_journal():
                best(before, measure(base / f"before{round_}", base / "media", base / "rows.csv", args.adds))
            best(after, measure(base / f"after{round_}", base / "media", base / "rows.csv", args.adds))
        size = (base / "after0" / journal.JOURNAL_FILE).stat().st_size
    print(f"{args.rows:,}-row import, {args.adds} single adds, {FILES} files of {SECONDS} s")
    print(f"{'':<20}{'catalog only':>14}{'with journal':>14}{'ratio':>8}")
    for key in before:
        print(f"{key:<20}{before[key]:>14.3f}{after[key]:>14.3f}{after[key] / before[key]:>8.2f}")
    print(f"journal size: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
