"""``index build --engine ray`` on clusters of several nodes on this machine: the embedding runs
where its resource is, a worker lost mid-build never costs the work, and a worker that cannot
see the media is named and ``--ship-media`` finishes the build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.cluster.helpers import assert_same_store, failures, ray_lines
from tests.indexer.helpers import live_windows

pytest.importorskip("ray", reason="the Ray engine is the optional extra audioscan[ray]; make test installs it")


def test_on_a_three_node_cluster_the_embedding_runs_where_the_resource_is(tmp_path, library_template, local):
    """A head and two workers; only one worker has the custom resource the actors ask for, so the store
    (equal to a local build's) can only have been embedded there."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=2, resources={"embedder": 1})
    try:
        store = tmp_path / "store"
        result = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), "index", "build",
                                 str(library_template), "--engine", "ray", "--ray-address", cluster.address,
                                 "--resources", '{"embedder": 1}', "--actors", "1", "--batch-size", "4",
                                 "--format", "json"], capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["files_indexed"] > 0
        assert_same_store(store, local)
    finally:
        cluster.shutdown()


def test_a_worker_lost_mid_build_never_costs_the_work(tmp_path):
    """Three nodes; a worker removed a few seconds into the build.  Ray reschedules what ran there, and
    the build either finishes on the nodes that remain or - when Ray gives up on a task of the lost
    node - stops with one sentence; then the next build, on the nodes that remain, finishes.  Either
    way every file ends up indexed once and the store checks clean."""
    import time

    from ray.cluster_utils import Cluster

    from audioscan.indexer.media.samples import scene, write_media

    library = tmp_path / "library"
    for i in range(24):
        write_media(library / f"take{i:02d}.flac",
                    scene(60, 16_000, background="rain", events=[("siren", 10, 20)], seed=i), rate=16_000)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1)
    cluster.add_node(num_cpus=1)
    command = [sys.executable, "-m", "audioscan", "--store", str(tmp_path / "store"), "index", "build", str(library),
               "--engine", "ray", "--ray-address", cluster.address, "--format", "json"]
    try:
        build = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        assert build.poll() is None, "the build ended before a node could be lost; give it more files"
        cluster.remove_node(worker)
        out, err = build.communicate(timeout=240)
        if build.returncode != 0:  # stopped: one sentence, and the store resumes on the nodes that remain
            assert build.returncode == 1 and "Traceback" not in err and "running the build again resumes" in err, err
            again = subprocess.run(command, capture_output=True, text=True, timeout=240)
            assert again.returncode == 0, again.stderr
        else:
            assert "left the Ray cluster" in err and json.loads(out)["files_indexed"] == 24
    finally:
        cluster.shutdown()
    assert len({path for _, path, _, _ in live_windows(tmp_path / "store")}) == 24
    with Store.open(tmp_path / "store") as opened:
        assert check_store(opened) == []


# ------------------------------------------------------------------ a node that cannot see the media
def _cannot_hide(folder: Path) -> str | None:
    """Why this machine cannot hide ``folder`` from one node's processes, or None when it can."""
    try:
        probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs none "$0" && test -z "$(ls -A "$0")"',
                                str(folder)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return "unshare is not installed"
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["refused"])[0]


def _start_hidden_node(address: str, hidden: Path, temp_dir: Path, log: Path) -> subprocess.Popen:
    """A worker raylet (1 CPU, the resource ``hidden_node``) started by `ray start` in a user and mount
    namespace of its own, where an empty tmpfs covers ``hidden``: its processes cannot see what is there.
    Its own temp dir keeps its sockets and its address file apart from any other Ray on this machine."""
    ray_cli = Path(sys.executable).parent / "ray"
    with log.open("w") as out:
        return subprocess.Popen(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs none "$0" && exec "$@"', str(hidden),
                                 str(ray_cli), "start", "--address", address, "--num-cpus", "1",
                                 "--resources", json.dumps({"hidden_node": 1}), "--temp-dir", str(temp_dir),
                                 "--disable-usage-stats", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _stop_hidden_node(node: subprocess.Popen, temp_dir: Path) -> None:
    """Every process of that node and none other: its process group (`ray start --block` and what it
    started), then whatever left the group and names the node's temp dir."""
    import contextlib

    import psutil

    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGTERM)
    try:
        node.wait(30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)
        node.wait()
    left = [process for process in psutil.process_iter(["cmdline"])
            if str(temp_dir) in " ".join(process.info["cmdline"] or ())]
    for process in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(left, timeout=10)


def _joined(address: str, resource: str, node: subprocess.Popen, log: Path) -> str:
    """The id of the node with ``resource`` once it has joined the cluster at ``address``."""
    import logging
    import time

    import ray

    ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [item["NodeID"] for item in ray.nodes() if item["Alive"] and resource in item["Resources"]]
            if found:
                return found[0]
            assert node.poll() is None, f"the node could not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        raise AssertionError(f"the node did not join in 60 s: {log.read_text()[-2000:]}")
    finally:
        ray.shutdown()


def test_a_node_that_cannot_see_the_media_is_named_and_ship_media_finishes_the_build(tmp_path, library_template,
                                                                                     local):
    """Two nodes: a head that runs the embedding actor (the resource it asks for) and has too little memory
    for a decoding task, and a worker whose mount namespace hides one folder of the library; so every file is
    decoded on the worker.  What the user gets: the build indexes every file the worker sees and goes on;
    the one it cannot see is reported in one sentence naming that node and --ship-media, and retried by the
    next build; the store checks clean; and a build with --ship-media completes it, equal to a local build."""
    import shutil
    import tempfile

    from ray.cluster_utils import Cluster

    from audioscan.indexer.ray_engine import DECODE_MEMORY

    library = tmp_path / "library"
    shutil.copytree(library_template, library)
    hidden = library / "folder with space"  # e.mp4, the one file the worker cannot see
    why = _cannot_hide(hidden)
    if why:
        pytest.skip(f"this machine forbids the user namespaces the test needs to hide the media from one node ({why})")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "memory": DECODE_MEMORY // 2,
                                                            "resources": {"embedder": 1}})
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-hidden-", dir="/tmp"))  # short: Ray's socket paths live under it
    log = tmp_path / "hidden-node.log"
    node = None
    try:
        node = _start_hidden_node(cluster.address, hidden, temp_dir, log)
        node_id = _joined(cluster.address, "hidden_node", node, log)
        store = tmp_path / "store"
        command = [sys.executable, "-m", "audioscan", "--store", str(store), "index", "build", str(library),
                   "--engine", "ray", "--ray-address", cluster.address, "--resources", '{"embedder": 1}',
                   "--actors", "1", "--batch-size", "4", "--format", "json"]
        first = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr
        assert ray_lines(first) == []
        said = [line.strip() for line in first.stderr.splitlines() if "not found at this path" in line]
        assert len(said) == 1 and said[0].startswith("folder with space/e.mp4: not found at this path on Ray node ")
        assert f"(node {node_id[:8]})" in said[0] and "--ship-media" in said[0]  # the node, and the way out
        assert json.loads(first.stdout)["files_failed"] == len(failures(local)) + 1
        failed = {str(Path(path).relative_to(library)): error for path, error in failures(store).items()}
        expected = {str(Path(path).relative_to(library_template)): error for path, error in failures(local).items()}
        assert failed == {**expected, "folder with space/e.mp4": said[0].split(": ", 1)[1]}  # retried by the next
        seen = [window for window in live_windows(local) if window[1] != "folder with space/e.mp4"]
        assert live_windows(store) == seen  # every file the worker could see, indexed as locally
        with Store.open(store) as opened:
            assert check_store(opened) == []

        shipped = subprocess.run(command + ["--ship-media"], capture_output=True, text=True, timeout=240)
        assert shipped.returncode == 0 and "Traceback" not in shipped.stderr, shipped.stderr
        assert json.loads(shipped.stdout)["files_indexed"] == 1  # the one file, read through the driver's machine
        assert_same_store(store, local)
        assert len(failures(store)) == len(expected)  # the broken files, as a local build has them
    finally:
        if node is not None:
            _stop_hidden_node(node, temp_dir)
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
