"""float16 against float32 vectors on disk: what halving the bytes costs and gives.

Two stores of the same N x 768 clustered vectors (``query_bench.make_store``, AR(1)-correlated
windows as overlapping windows of one recording are), one kept as float32 and one as float16,
each with its approximate index.  Against float32 exact search as the ground truth it prints:
segment bytes on disk; fetching 20k random windows by id (the snapshot included, median of 5);
exact and approximate top-10 recall@10 and search p50; and how far a float16 score is from the
float32 one (the largest difference over every query's top 10).  Queries are stored windows
plus noise of 5 % of their length.  The float32 store, in the same run, is the baseline.

    .venv/bin/python bench/dtype_bench.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from query_bench import latency, make_store  # noqa: E402

from audioscan.indexer.store import ann_build  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402
from audioscan.query.search import SetIndex  # noqa: E402

DIM, QUERIES, FETCHED = 768, 200, 20_000


def figures(folder: Path, rows: int, dtype: str, queries_from: np.ndarray | None) -> dict:
    make_store(folder, rows, DIM, rho=0.9, dtype=dtype)
    with Store.open(folder, write=True) as store:
        info = store.find_set()
        ann_build.build_ann(store, info, minimum=0)
    with Store.open(folder) as store:
        info = store.find_set()
        snapshot = store.snapshot(info)
        rng = np.random.default_rng(3)
        fetch = []
        for _ in range(5):
            ids = rng.choice(len(snapshot), FETCHED, replace=False)
            clock = time.perf_counter()
            store.snapshot(info).vectors_at(ids)
            fetch.append(time.perf_counter() - clock)
        index = SetIndex(snapshot)
        if queries_from is None:
            picked = snapshot.vectors_at(rng.choice(len(snapshot), QUERIES, replace=False))
            norms = np.linalg.norm(picked, axis=1, keepdims=True)
            queries_from = picked + 0.05 * norms / np.sqrt(DIM) * rng.standard_normal(picked.shape).astype(np.float32)
        exact = [index.top_windows(q, 10, exact=True) for q in queries_from]
        approximate = [index.top_windows(q, 10)[0] for q in queries_from]
        exact_p50, _ = latency(lambda q: index.top_windows(q, 10, exact=True), queries_from[:50])
        approx_p50, _ = latency(lambda q: index.top_windows(q, 10), queries_from)
        disk = sum(snapshot.segment_path(segment).stat().st_size for segment in snapshot.segments)  # live ones
    return {"queries": queries_from, "exact": exact, "approximate": approximate, "disk": disk,
            "fetch": float(np.median(fetch)), "exact_p50": exact_p50, "approx_p50": approx_p50}


def recall(found: list, truth: list) -> float:
    return float(np.mean([len(set(f) & set(t[0])) / 10 for f, t in zip(found, truth)]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        full = figures(Path(folder) / "fp32", args.rows, "fp32", None)
        half = figures(Path(folder) / "fp16", args.rows, "fp16", full["queries"])
    truth = full["exact"]
    score_gap = max(float(np.max(np.abs(np.sort(h[1])[::-1] - np.sort(f[1])[::-1])))
                    for h, f in zip(half["exact"], truth))
    print(f"{args.rows:,} windows x {DIM}; ground truth: float32 exact top-10 of {QUERIES} queries")
    print(f"{'':<10}{'disk MB':>9}{'fetch 20k ms':>14}{'exact r@10':>12}{'exact p50 ms':>14}"
          f"{'approx r@10':>13}{'approx p50 ms':>15}")
    for name, got in (("float32", full), ("float16", half)):
        print(f"{name:<10}{got['disk'] / 1e6:>9.0f}{got['fetch'] * 1e3:>14.1f}"
              f"{recall([e[0] for e in got['exact']], truth):>12.3f}{got['exact_p50']:>14.2f}"
              f"{recall(got['approximate'], truth):>13.3f}{got['approx_p50']:>15.3f}")
    print(f"float16/float32: disk {half['disk'] / full['disk']:.2f}x, fetch {half['fetch'] / full['fetch']:.2f}x; "
          f"largest top-10 score difference {score_gap:.2e}")


if __name__ == "__main__":
    main()
