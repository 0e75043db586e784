"""Threads on a busy machine: index build, exact search and a LOGMEL build, idle and beside a CPU hog.

Each workload runs in a fresh process, two ways:

- ``spinning``: FAISS and torch imported before audioscan, so their OpenMP runtime starts
  with its default busy-waiting (how every run behaved before ``audioscan.models.threads``);
- ``passive``: audioscan imported first, as the CLI and ``import audioscan`` do now.

and each of those with the machine idle and beside two busy processes (a CPU hog: what
a browser, an editor or another job does to a laptop).  It prints wall and CPU seconds
of the workload's process, and the ratio of the hog's wall time to the idle one
(target: within 2x).  The workloads:

- ``index build``: a full approximate index (IVF-PQ) of ``--windows`` x 768 vectors;
- ``exact search``: 200 single-query searches over 10k vectors in FAISS, as the windows
  committed after the index are searched;
- ``LOGMEL build``: ``index build`` of ``--minutes`` of recorded-like foley.

    .venv/bin/python bench/threads_bench.py [--windows 100000] [--minutes 5]
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("index build", "exact search", "LOGMEL build")
MODES = ("spinning", "passive")


def _hog(stop) -> None:
    while not stop.is_set():
        pass


def _workload(name: str, data: Path) -> None:
    import numpy as np

    if name == "index build":
        from audioscan.indexer.store.ann_build import BaseBuilder
        from audioscan.indexer.store.store import Store

        with Store.open(data / "vectors") as store:
            BaseBuilder(store.snapshot(store.find_set()), False, centre=None).run()
    elif name == "exact search":
        import faiss

        rng = np.random.default_rng(0)
        index = faiss.IndexFlatIP(768)
        index.add(rng.standard_normal((10_000, 768)).astype(np.float32))
        for query in rng.standard_normal((200, 768)).astype(np.float32):
            index.search(query[None], 10)
    else:
        from audioscan.indexer.build import BuildOptions, build
        from audioscan.indexer.store.store import Store

        with tempfile.TemporaryDirectory() as tmp, Store.open(Path(tmp) / "store", write=True) as store:
            build(store, data / "recorded", options=BuildOptions())


def child(name: str, mode: str, data: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    # ``spinning``: OpenMP starts with FAISS, before audioscan can ask it to wait passively.  Both
    # ways load everything before the clock starts: imports are not the work.
    for module in ("faiss", "torch", "audioscan") if mode == "spinning" else ("audioscan", "faiss", "torch"):
        importlib.import_module(module)
    clock, cpu = time.perf_counter(), time.process_time()
    _workload(name, data)
    print(json.dumps({"wall": time.perf_counter() - clock, "cpu": time.process_time() - cpu}))


def run_child(name: str, mode: str, data: Path) -> dict:
    env_free = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "AUDIOSCAN_THREADS"}
    env = {k: v for k, v in os.environ.items() if k not in env_free}
    done = subprocess.run([sys.executable, __file__, "--child", name, mode, str(data)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare(data: Path, windows: int, minutes: float) -> None:
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    from foley import make_library
    from query_bench import make_store

    make_store(data / "vectors", windows, 768, rho=0.9)
    make_library(data / "recorded", recordings=max(1, round(minutes / 2)), takes=1, seed=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, mode, data = args.child
        return child(name, mode, Path(data))
    with tempfile.TemporaryDirectory(prefix="audioscan-threads-") as tmp:
        data = Path(tmp)
        prepare(data, args.windows, args.minutes)
        print(f"{args.windows} x 768 vectors; {args.minutes:g} min of recorded-like foley; "
              f"{multiprocessing.cpu_count()} cores")
        for name in WORKLOADS:
            for mode in MODES:
                idle = run_child(name, mode, data)
                stop = multiprocessing.Event()
                hogs = [multiprocessing.Process(target=_hog, args=(stop,), daemon=True) for _ in range(2)]
                for hog in hogs:
                    hog.start()
                try:
                    busy = run_child(name, mode, data)
                finally:
                    stop.set()
                    for hog in hogs:
                        hog.join()
                print(f"  {name:13s} {mode:8s}: idle {idle['wall']:6.2f} s wall {idle['cpu']:6.2f} s CPU; "
                      f"beside the hog {busy['wall']:6.2f} s wall {busy['cpu']:6.2f} s CPU; "
                      f"hog / idle = {busy['wall'] / idle['wall']:.1f}x", flush=True)


if __name__ == "__main__":
    main()
