"""``rescore --all`` with five detectors against five single rescores of the same windows.

The synthetic field season of ``filter_bench`` (one-hour AudioMoth files at four sites, clustered
vectors, no model runs); five detectors are trained on labelled hours of different files, then
timed warm: ``rescore --all`` (``api.many.score_every_detector``: the windows taken once, each
detector scoring every window once, no moments formed) against five ``rescore NAME`` in a row,
the baseline in the same run.

    .venv/bin/python bench/many_bench.py [--windows 200000] [--dim 128]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filter_bench import PER_FILE, make_season, timed  # noqa: E402

import audioscan  # noqa: E402
from audioscan.api.many import score_every_detector  # noqa: E402

DETECTORS = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_season(folder, args.windows, args.dim)
        lib = audioscan.open(folder)
        files = sorted({media.rel for media in lib.media().values()})
        for k in range(DETECTORS):
            name = f"call{k}"
            lib.labels.add(files[2 * k], 100, end=400, label=name)
            lib.labels.add(files[2 * k + 1], 0, end=3000, label=name, negative=True)
            lib.train(name, negatives="labelled")
        names = [f"call{k}" for k in range(DETECTORS)]
        single = timed(lambda: [lib.detector(name).rescore(0.5) for name in names])
        together = timed(lambda: score_every_detector(lib, names))
        found, _ = score_every_detector(lib, names)
    print(f"{len(found.starts):,} windows x {args.dim} in {args.windows // PER_FILE} files, {DETECTORS} detectors")
    print(f"  five single rescores (baseline): {single:.2f} s")
    print(f"  rescore --all:                   {together:.2f} s ({together / single:.2f}x), "
          f"{len(found.fired()):,} windows where some detector fires")


if __name__ == "__main__":
    main()
