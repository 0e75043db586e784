"""A segment's write with its checksum: XXH3-128 (what commits record now) against BLAKE2b-128
(what they recorded before), in the same process, on the same vectors.

Each write is durable as a commit's is (temporary name, fsync, rename), so the figures hold what a
commit pays for its segment; the hash alone is timed too, over the bytes of the file written.

    .venv/bin/python bench/checksum_bench.py [--rows 100000] [--dim 768] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.store import segments  # noqa: E402


def timed_write(folder: Path, ids: np.ndarray, vectors: np.ndarray, dtype: str, repeats: int) -> float:
    """The best of ``repeats`` durable segment writes, in seconds."""
    best = float("inf")
    for attempt in range(repeats):
        path = folder / f"seg-bench-{dtype}-{attempt}.faiss"
        started = time.perf_counter()
        segments.write_segment(path, ids, parts=[vectors], dtype=dtype)
        best = min(best, time.perf_counter() - started)
        path.unlink()
    return best


def timed_hash(data: bytes, make: type, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        digest = make()
        digest.update(data)
        digest.hexdigest()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    ids = np.arange(args.rows, dtype=np.int64)
    blake2b = lambda: hashlib.blake2b(digest_size=16)  # noqa: E731 - the recorder before XXH3
    print(f"{args.rows:,} windows x {args.dim}, best of {args.repeats}")
    print(f"{'':26}{'BLAKE2b-128 (before)':>22}{'XXH3-128 (now)':>16}{'before / now':>14}")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as folder:
        for dtype in ("fp16", "fp32"):
            now = timed_write(Path(folder), ids, vectors, dtype, args.repeats)
            current = segments.new_digest
            segments.new_digest = blake2b  # type: ignore[assignment]  # the baseline, in this process
            try:
                before = timed_write(Path(folder), ids, vectors, dtype, args.repeats)
            finally:
                segments.new_digest = current
            print(f"{'durable write, ' + dtype:<26}{before:>20.3f} s{now:>14.3f} s{before / now:>13.2f}x")
            path = Path(folder) / "sample.faiss"
            segments.write_segment(path, ids, parts=[vectors], dtype=dtype)
            data = path.read_bytes()
            hash_before, hash_now = (timed_hash(data, make, args.repeats) for make in (blake2b, xxhash.xxh3_128))
            mb = len(data) / 1e6
            print(f"{'hash alone, ' + dtype + f' ({mb:.0f} MB)':<26}{hash_before:>20.3f} s{hash_now:>14.3f} s"
                  f"{hash_before / hash_now:>13.1f}x")


if __name__ == "__main__":
    main()
