"""Every block of the catalog damaged in turn: what `index check` finds, what `index repair` brings back.

A store with 1,000 labels and 5 detectors (3 versions each) over a small library.  For each
256 KiB block of its catalog (and the file's header), a fresh copy has 1 KiB of that block
overwritten with random bytes; then `index check` must find the damage (or the block is free
space, which nothing ever reads), and after `index repair` the labels and detector versions must
equal the ones before: lost = 0 for every block is the target (issue 31).  The figures printed
per block: whether check found it, the repair's seconds, labels and detector versions lost.

Run: ``.venv/bin/python bench/damage_bench.py``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import audioscan  # noqa: E402
from audioscan.api import UserError  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402

BLOCK, HEADER = 262_144, 12_288


def make_store(base: Path) -> Path:
    media = base / "media"
    for number in range(6):
        write_media(media / f"take{number}.flac",
                    scene(40, 16_000, background="noise", events=[("siren", 10, 20)], seed=number), rate=16_000)
    library = audioscan.open(base / "store")
    library.build(media)
    rng = np.random.default_rng(0)
    rows = base / "labels.csv"
    with rows.open("w") as out:
        out.write("path,start,end,label,negative\n")
        for index in range(1000):
            start = round(float(rng.uniform(0, 35)), 3)
            out.write(f"take{index % 6}.flac,{start},{start + 2:.3f},sound{index % 5},{int(index % 3 == 0)}\n")
    library.labels.import_file(rows)
    for name in range(5):
        for _ in range(3):
            library.train(f"sound{name}")
    return base / "store"


def work(store: Path) -> tuple[set, set]:
    library = audioscan.open(store)
    labels = {(item.media.rel, item.label, item.start, item.end, item.positive) for item in library.labels.list()}
    return labels, {(row["name"], row["version"]) for row in library.detectors()}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        store = make_store(base)
        before = work(store)
        size = (store / "catalog.duckdb").stat().st_size
        offsets = [4096] + [HEADER + block * BLOCK + 1024 for block in range((size - HEADER) // BLOCK)]
        with duckdb.connect(str(store / "catalog.duckdb"), read_only=True) as con:
            free = int(con.execute("SELECT free_blocks FROM pragma_database_size()").fetchone()[0])
        print(f"catalog {size / 1e6:.1f} MB: header + {len(offsets) - 1} blocks ({free} free); "
              f"{len(before[0])} labels, {len(before[1])} detector versions")
        print("offset      check        repair_s  labels_lost  versions_lost")
        worst = 0
        missed = 0
        for offset in offsets:
            copy = base / "copy"
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(store, copy)
            with (copy / "catalog.duckdb").open("r+b") as handle:
                handle.seek(offset)
                handle.write(os.urandom(1024))
            library = audioscan.open(copy)
            try:
                problems, _ = library.check()
                found = "found" if problems else "clean"
            except UserError:
                found = "found"
            started = time.perf_counter()
            library.repair()
            seconds = time.perf_counter() - started
            after = work(copy)
            lost = (len(before[0] - after[0]), len(before[1] - after[1]))
            worst = max(worst, *lost)
            missed += found == "clean"
            print(f"{offset:>10}  {found:<11}  {seconds:8.2f}  {lost[0]:>11}  {lost[1]:>13}")
        print(f"blocks where check saw nothing: {missed} (free blocks: {free}); most lost in any block: {worst}")


if __name__ == "__main__":
    main()
