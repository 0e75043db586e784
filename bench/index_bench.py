"""Index benchmark: decode speed per format, LOGMEL windows/s, no-op rebuild of 1,000 files.

Targets (2-core machine): decode >= 300x real time per core; a no-op rebuild of
1,000 small files <= 1 s.  Run: ``.venv/bin/python bench/index_bench.py``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.build import BuildOptions, build  # noqa: E402
from audioscan.indexer.media.decode import decode  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402
from audioscan.models import registry  # noqa: E402

FORMATS = [("wav", 44_100), ("flac", 48_000), ("mp3", 44_100), ("m4a", 48_000), ("mkv", 48_000),
           ("webm", 48_000), ("mp4", 48_000)]


def decode_speed(folder: Path, seconds: float = 120.0) -> None:
    print(f"decode to 16 kHz mono, {seconds:.0f} s stereo files, one thread:")
    for ext, rate in FORMATS:
        audio = scene(seconds, rate, "rain", [("siren", 10, 40), ("knock", 60, 90)], seed=1)
        path = write_media(folder / f"decode.{ext}", np.stack([audio, audio[::-1]]), rate, video=ext == "mp4")
        best = float("inf")
        for _ in range(3):
            clock = time.perf_counter()
            total = sum(len(block) for _, block in decode(path, [16_000]))
            best = min(best, time.perf_counter() - clock)
        print(f"  {ext:5s} {rate} Hz  {total / 16_000 / best:7.0f}x real time  ({best * 1000:.0f} ms)")


def logmel_rate(batch: int = 32, rounds: int = 5) -> float:
    model = registry.load_model("LOGMEL")
    windows = np.random.default_rng(0).standard_normal((batch, 8 * 16_000)).astype(np.float32) * 0.1
    model.embed(windows)
    clock = time.perf_counter()
    for _ in range(rounds):
        model.embed(windows)
    rate = batch * rounds / (time.perf_counter() - clock)
    print(f"LOGMEL: {rate:.0f} windows/s (8 s windows, batch {batch})")
    return rate


def rebuild(folder: Path, files: int = 1000) -> None:
    library = folder / "many"
    rng = np.random.default_rng(0)
    for i in range(files):
        write_media(library / f"d{i // 100:02d}" / f"f{i:04d}.wav",
                    (rng.standard_normal(8_000) * 0.1).astype(np.float32), 16_000)
    store = folder / "store"
    timings = []
    for label in ("first build", "no-op rebuild", "no-op rebuild"):
        clock = time.perf_counter()
        with Store.open(store, write=True) as opened:
            report = build(opened, library, BuildOptions(batch_size=64))
        timings.append(time.perf_counter() - clock)
        print(f"{label:14s} of {files} files: {timings[-1]:6.2f} s  ({report.files_indexed} embedded, "
              f"{report.files_skipped} unchanged)")
    print(f"no-op rebuild / first build = {min(timings[1:]) / timings[0]:.3f}  (target: no-op <= 1 s)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        decode_speed(Path(tmp))
        logmel_rate()
        rebuild(Path(tmp))
