"""Query benchmark: search, train and rescore on stores of synthetic vectors.

Builds stores through the store API (100k and 1M windows x 768, and 100k x 5120;
clustered vectors, like real embeddings, 1,000 windows per "file") and prints:
search p50/p99 latency (exact, and through the approximate index with recall@10 against
exact), train time for 100 / 1,000 / 10,000 labelled windows per classifier, rescore
time for the whole set, and peak memory - beside how long one LOGMEL inference pass
over the same windows would take (measured on a sample here).

Targets on a 2-core machine: rescore 1M x 768 with logreg <= 0.5 s; train+calibrate
logreg on 1,000 labels <= 2 s; search p50 <= 10 ms exact at 100k, and <= 1 ms with the
approximate index at recall@10 >= 0.97.

    .venv/bin/python bench/query_bench.py [--sizes 100000:768 1000000:768 100000:5120] [--hgb]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.build import BuildOptions  # noqa: E402
from audioscan.indexer.store.ann_build import build_ann  # noqa: E402
from audioscan.indexer.store.compact import compact_set  # noqa: E402
from audioscan.indexer.store.records import Commit, FileVectors, MediaRow  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402
from audioscan.models import registry  # noqa: E402
from audioscan.query import classifier as classifiers  # noqa: E402
from audioscan.query.rescore import all_scores  # noqa: E402
from audioscan.query.search import SetIndex  # noqa: E402
from audioscan.query.training import Normalizer, TrainingSet  # noqa: E402

PER_FILE = 1000
CLUSTERS = 256


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def make_store(folder: Path, count: int, dim: int, rho: float = 0.0, dtype: str = "fp32") -> tuple[Store, object,
                                                                                                   float]:
    """``count`` windows of clustered vectors, committed and compacted as ``index build`` does
    (a commit every ``commit_windows``, small segments merged at the end); ``rho`` > 0 makes
    each window's noise an AR(1) step from the previous window's, as overlapping windows of
    one recording are (8 s windows every 1 s share 7/8 of their audio); ``dtype`` is how the set
    keeps them ("fp32" or "fp16").  Returns the store, the
    set and the seconds spent inserting (commits and compaction, not making the vectors)."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CLUSTERS, dim)).astype(np.float32)
    clock, inserting = time.perf_counter(), 0.0
    with Store.open(folder, write=True) as store:
        info = store.ensure_set("SYNTH", f"synthetic-{dim}", window=8.0, hop=1.0, sample_rate=16_000, dim=dim,
                                dtype=dtype)
        root = store.ensure_root(folder)
        change = Commit()
        for start in range(0, count, PER_FILE):
            n = min(PER_FILE, count - start)
            media_id = store.new_media_id()
            # Runs of 20 windows share a sound (a cluster), as consecutive windows of real audio do.
            labels = np.repeat(rng.integers(0, CLUSTERS, n // 20 + 1), 20)[:n]
            noise = rng.standard_normal((n, dim))
            if rho:
                noise = lfilter([np.sqrt(1 - rho ** 2)], [1.0, -rho], noise, axis=0)
            vectors = (centres[labels] + 0.7 * noise).astype(np.float32)
            change.media.append(MediaRow(media_id, root, path=f"f{media_id}.wav", size=1, mtime_ns=1,
                                         fingerprint=f"{media_id}", duration=n + 7.0, status="ok"))
            times = np.arange(n, dtype=np.float64)
            change.vectors.append(FileVectors(media_id, info.id, starts=times, ends=times + 8, vectors=vectors))
            if change.windows() >= BuildOptions.commit_windows or start + n >= count:
                started = time.perf_counter()
                store.commit(change)
                inserting += time.perf_counter() - started
                change = Commit()
        started = time.perf_counter()
        compact_set(store, info)
        inserting += time.perf_counter() - started
    print(f"  built the store in {time.perf_counter() - clock:.1f} s ({inserting:.1f} s of it inserting: "
          "commits and compaction, the rest making vectors)")
    return Store(folder, write=False), info, inserting


def latency(run, queries) -> tuple[float, float]:
    times = []
    for q in queries:
        clock = time.perf_counter()
        run(q)
        times.append(time.perf_counter() - clock)
    return np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3


def bench_search(store: Store, info, ann: bool) -> None:
    rng = np.random.default_rng(1)
    index = SetIndex(store.snapshot(info), use_ann=False)
    index.matrix()
    ids = rng.choice(len(index), 200, replace=False)
    queries = index.matrix()[ids] + 0.05 * rng.standard_normal((200, info.dim)).astype(np.float32)
    p50, p99 = latency(lambda q: index.top_windows(q, 10, exact=True), queries)
    m50, m99 = latency(lambda q: index.search(q, 10), queries[:50])
    print(f"  search exact: top-10 windows p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
          f"merged hits p50 {m50:.2f} ms, p99 {m99:.2f} ms")
    if not ann:
        return
    clock = time.perf_counter()
    with Store.open(store.path, write=True) as writer:
        build_ann(writer, info, minimum=0)
    built = time.perf_counter() - clock
    fast = SetIndex(store.snapshot(info))
    a50, a99 = latency(lambda q: fast.top_windows(q, 10), queries)
    recall = np.mean([len(set(fast.top_windows(q, 10)[0]) & set(index.top_windows(q, 10, exact=True)[0])) / 10
                      for q in queries])
    print(f"  search approximate (built in {built:.1f} s): top-10 p50 {a50:.3f} ms, p99 {a99:.3f} ms, "
          f"recall@10 {recall:.3f}  (exact/approximate p50 = {p50 / a50:.0f}x)")


def bench_train(store: Store, info, kinds: list[str]) -> classifiers.Classifier:
    rng = np.random.default_rng(2)
    snapshot = store.snapshot(info, stats=True)
    normalizer = Normalizer.load(snapshot, "file")
    kept = None
    for size in (100, 1000, 10_000):
        picks = np.sort(rng.choice(len(snapshot), size, replace=False))
        for kind in kinds:
            clock = time.perf_counter()
            vectors = snapshot.vectors_at(picks)
            features = normalizer.apply(vectors, snapshot.media_ids[picks])
            y = (features[:, 0] > 0.3).astype(np.int8)  # a learnable, unbalanced target
            data = TrainingSet(features, y, window_ids=snapshot.ids[picks], positives=int(y.sum()), hard_negatives=0,
                               auto_negatives=int(len(y) - y.sum()))
            trained = classifiers.fit(data, "bench", label="bench", set_id=info.id, kind=kind, normalize="file")
            print(f"  train {kind:6s} on {size:>6} labelled windows: {time.perf_counter() - clock:6.2f} s "
                  f"(cv AP {trained.metrics['cv_ap']:.3f}, {trained.metrics['calibration']})")
            if kind == "logreg" and size == 1000:
                kept = trained
    return kept


def bench_rescore(store: Store, info, trained, logmel_rate: float) -> None:
    all_scores(store.snapshot(info, stats=True), trained)  # warm the page cache, as a repeated rescore would
    runs = []
    for _ in range(3):
        clock = time.perf_counter()
        scored = all_scores(store.snapshot(info, stats=True), trained)  # a rescore's snapshot is part of its time
        runs.append(time.perf_counter() - clock)
    inference = len(scored.ids) / logmel_rate
    print(f"  rescore {len(scored.ids)} windows with logreg: best {min(runs):.3f} s, median {np.median(runs):.3f} s; "
          f"one LOGMEL inference pass would take ~{inference:.0f} s ({inference / min(runs):.0f}x longer)")


def logmel_windows_per_second() -> float:
    model = registry.load_model("LOGMEL")
    batch = (np.random.default_rng(0).standard_normal((8, 8 * 16_000)) * 0.1).astype(np.float32)
    model.embed(batch)
    clock, done = time.perf_counter(), 0
    while time.perf_counter() - clock < 3:
        model.embed(batch)
        done += len(batch)
    return done / (time.perf_counter() - clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["100000:768", "1000000:768", "100000:5120"])
    parser.add_argument("--hgb", action="store_true", help="also time the hgb classifier (slow at 10,000)")
    parser.add_argument("--ann-max", type=int, default=100_000, help="largest set to build an approximate index for")
    args = parser.parse_args()
    rate = logmel_windows_per_second()
    print(f"LOGMEL inference here: {rate:.0f} windows/s (8 s windows)")
    for size in args.sizes:
        count, dim = (int(x) for x in size.split(":"))
        print(f"{count} windows x {dim}:")
        with tempfile.TemporaryDirectory() as tmp:
            store, info, _ = make_store(Path(tmp) / "store", count, dim)
            bench_search(store, info, ann=count <= args.ann_max)
            trained = bench_train(store, info, ["logreg", "hgb"] if args.hgb else ["logreg"])
            bench_rescore(store, info, trained, rate)
            print(f"  peak memory so far: {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
