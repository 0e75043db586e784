"""Ray benchmark: the same library built by the local engine and on a local Ray cluster.

Writes a library of ``--files`` recordings of ``--seconds`` each (wav, flac, mp3, m4a,
mkv, mp4 in turn), builds it with LOGMEL once in this process and once with
``--engine ray`` on a local Ray of ``--cpus`` CPUs (started by the build, as
``index build --engine ray`` does), and prints windows/s of each, Ray's fixed start-up
cost (measured apart) and its overhead per window.  LOGMEL is the cheapest model, so
this is Ray's worst case: with a neural model on GPUs the embedding stage dominates and
the fixed cost disappears in it.  Both stores are compared window by window.

Then, on a cluster of three nodes on this machine (``ray.cluster_utils.Cluster``: a head of one CPU
and two workers sharing the rest, the build joining it by address as it would a real one), the
same build again, and the time from a node's loss to the build's first line about it: a worker is
removed a few seconds into a build (``index build --engine ray`` in a process of its own) and its
standard error is read until the line naming the lost node appears.

    .venv/bin/python bench/ray_bench.py [--files 40] [--seconds 60] [--cpus 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from audioscan.indexer.build import BuildOptions, build  # noqa: E402
from audioscan.indexer.media.samples import scene, write_media  # noqa: E402
from audioscan.indexer.ray_engine import RayOptions  # noqa: E402
from audioscan.indexer.store.store import Store  # noqa: E402

FORMATS = [("wav", 16_000), ("flac", 44_100), ("mp3", 44_100), ("m4a", 48_000), ("mkv", 48_000), ("mp4", 48_000)]
BACKGROUNDS = ["rain", "hum", "noise"]


def make_library(folder: Path, files: int, seconds: float) -> None:
    for i in range(files):
        ext, rate = FORMATS[i % len(FORMATS)]
        events = [("siren", 5, 15), ("knock", seconds / 2, seconds / 2 + 5)]
        audio = scene(seconds, rate, background=BACKGROUNDS[i % len(BACKGROUNDS)], events=events, seed=i)
        write_media(folder / f"take{i:03d}.{ext}", audio, rate=rate, video=ext == "mp4")


def timed_build(store: Path, library: Path, ray: RayOptions | None, workers: int) -> tuple[float, int]:
    clock = time.perf_counter()
    with Store.open(store, write=True) as opened:
        report = build(opened, library, options=BuildOptions(ray=ray, decode_workers=workers))
    return time.perf_counter() - clock, report.windows_embedded


def ray_start_up(cpus: int) -> float:
    import ray

    clock = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray.shutdown()
    return time.perf_counter() - clock


def same_vectors(a: Path, b: Path) -> float:
    """The lowest cosine between the two stores' vectors of the same window."""
    vectors = []
    for store in (a, b):
        with Store.open(store) as opened:
            snapshot = opened.snapshot(opened.find_set())
            keys = [(snapshot.media[int(m)].rel, round(float(s), 6)) for m, s in zip(snapshot.media_ids,
                                                                                     snapshot.starts)]
            vectors.append(dict(zip(keys, snapshot.vectors())))
    local, ray = vectors
    assert local.keys() == ray.keys(), "the two builds stored different windows"
    return min(float(v @ ray[k] / (np.linalg.norm(v) * np.linalg.norm(ray[k]) + 1e-12)) for k, v in local.items())


def three_nodes(cpus: int):
    """A head of one CPU and two workers sharing the other ``cpus`` (at least one each)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=max(1, (cpus - 1) // 2 + (1 if i < (cpus - 1) % 2 else 0)))
               for i in range(2)]
    return cluster, workers


def loss_to_first_line(library: Path, store: Path, cpus: int) -> tuple[float | None, str]:
    """Seconds from a worker's removal mid-build to the build's line naming it (None: never said),
    and the build's last line."""
    cluster, workers = three_nodes(cpus)
    try:
        build_process = subprocess.Popen([sys.executable, "-m", "audioscan", "--store", str(store), "index", "build",
                                          str(library), "--engine", "ray", "--ray-address", cluster.address,
                                          "--ray-wait", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        time.sleep(10)  # into the build: the actors and decoders are running
        cluster.remove_node(workers[0])
        removed = time.perf_counter()
        said = None
        assert build_process.stderr is not None
        for line in build_process.stderr:
            if said is None and "left the Ray cluster" in line:
                said = time.perf_counter() - removed
        out, _ = build_process.communicate()
        return said, (out.strip().splitlines() or [""])[-1]
    finally:
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="audioscan-ray-") as tmp:
        library = Path(tmp) / "library"
        make_library(library, args.files, args.seconds)
        print(f"library: {args.files} files x {args.seconds:.0f} s ({args.files * args.seconds / 3600:.2f} h), "
              f"LOGMEL 8 s / 1 s windows")
        local_s, windows = timed_build(Path(tmp) / "local", library, None, workers=args.cpus)
        print(f"  local engine ({args.cpus} decode threads): {local_s:.1f} s, {windows / local_s:.0f} windows/s")
        start_up = ray_start_up(args.cpus)
        ray_s, ray_windows = timed_build(Path(tmp) / "ray", library, RayOptions(num_cpus=args.cpus), workers=1)
        print(f"  Ray engine (local cluster, {args.cpus} CPUs): {ray_s:.1f} s, {ray_windows / ray_s:.0f} windows/s; "
              f"of that, starting Ray {start_up:.1f} s")
        steady = max(ray_s - start_up, 1e-9)
        print(f"  Ray / local time: {ray_s / local_s:.2f}x; without start-up: {steady / local_s:.2f}x "
              f"({(steady - local_s) / windows * 1e3:+.2f} ms per window)")
        lowest = same_vectors(Path(tmp) / "local", Path(tmp) / "ray")
        print(f"  lowest cosine between the two stores' vectors of a window: {lowest:.6f}")
        cluster, _ = three_nodes(args.cpus)
        try:
            nodes_s, nodes_windows = timed_build(Path(tmp) / "nodes", library, RayOptions(address=cluster.address),
                                                 workers=1)
        finally:
            cluster.shutdown()
        print(f"  Ray engine (3 nodes on this machine, {args.cpus} CPUs in all): {nodes_s:.1f} s, "
              f"{nodes_windows / nodes_s:.0f} windows/s ({nodes_s / local_s:.2f}x the local engine's time)")
        said, last = loss_to_first_line(library, Path(tmp) / "lost", args.cpus)
        print("  a worker removed mid-build: " + ("never said" if said is None else
                                                  f"the build's first line about it came {said:.1f} s later")
              + f"; the build went on: {last}")


if __name__ == "__main__":
    main()
