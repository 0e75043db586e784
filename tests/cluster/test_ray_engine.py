"""``index build --engine ray`` on a real local Ray (2 CPUs): the same store as a local build,
the same failures, and a driver killed mid-build that resumes like a local one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.status import store_status
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import build_once, live_windows, vectors_by_window

pytest.importorskip("ray", reason="the Ray engine is the optional extra audioscan[ray]; make test installs it")


def _ray_build(store: Path, root: Path, *extra: str, crash_at: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, AUDIOSCAN_CRASH_AT=crash_at)
    return subprocess.run([sys.executable, "-m", "audioscan", "--store", str(store), "index", "build", str(root),
                           "--engine", "ray", "--ray-cpus", "2", "--batch-size", "4", *extra],
                          env=env, capture_output=True, text=True, timeout=240)


# A line of Ray's own: its core's log ("[2026-01-01 10:00:00,123 E 12 34] core_worker.cc:2465: ..."), its Python
# loggers ("2026-01-01 10:00:00,123 INFO worker.py:1841 -- ..."), its warnings, and what its processes print
# ("(raylet) ...", "(pid=12) ...", "[state-dump] ...").
_RAY_LINE = re.compile(r"^\s*(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z] \d+ \d+\]"
                       r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\s+[A-Z]+ \S+\.py:\d+ --"
                       r"|\((raylet|pid=|\w+ pid=)|\[state-dump\]|.*Ray\w*Warning:)")


def _ray_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The lines of a build's output that Ray wrote: none, the output being audioscan's alone."""
    return [line for line in (result.stdout + result.stderr).splitlines() if _RAY_LINE.match(line)]


def _failures(store: Path) -> dict[str, str]:
    with Store.open(store) as opened:
        return {item["path"]: item["error"] for item in store_status(opened)["failed"]}


@pytest.fixture(scope="module")
def local(tmp_path_factory, library_template):
    store = tmp_path_factory.mktemp("local") / "store"
    build_once(store, library_template, batch_size=4)
    return store


def _assert_same_store(store: Path, reference: Path) -> None:
    assert live_windows(store) == live_windows(reference)
    ours, theirs = vectors_by_window(store), vectors_by_window(reference)
    for key, vector in theirs.items():
        other = ours[key]
        cosine = float(vector @ other / (np.linalg.norm(vector) * np.linalg.norm(other)))
        assert cosine >= 0.9999, f"{key}: cosine {cosine}"
    with Store.open(store) as opened:
        assert check_store(opened) == []


@pytest.mark.parametrize("ship", [False, True], ids=["shared-storage", "ship-media"])
def test_a_ray_build_stores_what_a_local_build_stores(tmp_path, library_template, local, ship):
    store = tmp_path / "store"
    result = _ray_build(store, library_template, *(["--ship-media"] if ship else []))
    assert result.returncode == 0, result.stderr
    _assert_same_store(store, local)
    assert _failures(store) == _failures(local) and len(_failures(local)) == 4
    for name in ("empty.wav", "garbage.mp4", "silent.flac", "no-audio.mp4"):
        assert name in result.stderr  # reported on the spot, as a local build reports them
    assert _ray_lines(result) == []  # nothing of Ray's internals (its core's "constructor arguments" line...)
    again = _ray_build(store, library_template)
    assert again.returncode == 0 and "0 windows embedded" in again.stdout  # nothing re-embedded


def test_a_killed_driver_leaves_a_clean_store_that_resumes(tmp_path, library_template, local):
    store = tmp_path / "store"
    killed = _ray_build(store, library_template, "--commit-every", "0", crash_at="embedded:5")
    assert killed.returncode == -signal.SIGKILL
    with Store.open(store) as opened:
        assert check_store(opened) == []
    done_before = {path for _, path, _, _ in live_windows(store)}
    assert 0 < len(done_before) < len({path for _, path, _, _ in live_windows(local)})
    resumed = _ray_build(store, library_template, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["files_indexed"] > 0  # stdout is audioscan's JSON, nothing of Ray's
    _assert_same_store(store, local)


def test_in_a_ray_session_the_core_log_stays_off_the_terminal_and_the_rest_gets_through():
    """What a Ray session's standard error passes: audioscan's lines, what Ray's processes print, and a
    FATAL line of Ray's core, even one written as the core ends the process (no Python left to flush
    anything); not the core's copies of its ERROR lines, which its log file holds.  Standard output
    stays audioscan's: nothing of the session's."""
    import textwrap

    core = "[2026-12-08 01:04:59,411 E 31700 32125] core_worker.cc:2465: Actor with class name: 'MapWorker' has"
    fatal = "[2026-12-08 01:05:00,001 C 31700 31700] core_worker.cc:99: Check failed: the raylet is gone"
    script = textwrap.dedent("""
        import os, sys
        from audioscan.indexer.ray_cluster import ray_output
        core, fatal = (line.encode() + b"\\n" for line in sys.argv[1:])
        with ray_output():
            os.write(2, b"a notice of audioscan's\\n" + core)
            os.write(1, b"what a Ray process prints\\n")
            os.write(2, fatal)
            os._exit(3)  # as Ray's core ends a process
    """)
    result = subprocess.run([sys.executable, "-c", script, core, fatal], capture_output=True, text=True, timeout=60)
    assert result.returncode == 3 and result.stdout == ""
    assert result.stderr.splitlines() == ["a notice of audioscan's", "what a Ray process prints", fatal]


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, library_template):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "ray.py").write_text("raise ImportError('No module named ray')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-m", "audioscan", "--store", str(tmp_path / "store"), "index",
                             "build", str(library_template), "--engine", "ray"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'pip install "audioscan[ray]"' in result.stderr and "Traceback" not in result.stderr


def test_shipped_media_decode_to_the_same_samples(library_template, monkeypatch):
    """The reader actor's file-like view (here a local stand-in) decodes like the path itself."""
    from audioscan.indexer.ray_engine import _shipped

    class Reader:
        class size:
            @staticmethod
            def remote(path):
                return os.stat(path).st_size

        class read:
            @staticmethod
            def remote(path, offset, size):
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    return handle.read(size)

    import ray

    monkeypatch.setattr(ray, "get", lambda value: value)
    path = library_template / "f.mkv"
    shipped = decode_all(_shipped(Reader, str(path)), 16_000)
    assert np.array_equal(shipped, decode_all(path, 16_000))


def test_a_model_that_cannot_load_on_the_cluster_is_one_sentence(tmp_path, library_template):
    result = _ray_build(tmp_path / "store", library_template, "--device", "cuda:7")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "on the Ray cluster: --device cuda:7" in result.stderr


def test_actors_that_would_leave_no_cpu_to_decode_are_refused(tmp_path, library_template):
    result = _ray_build(tmp_path / "store", library_template, "--actors", "2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "leave no CPU to decode on; give --actors 1 or fewer" in result.stderr


def _cluster(resources: dict) -> object:
    """A stand-in for the ``ray`` module that only reports the cluster's resources."""
    return type("Cluster", (), {"cluster_resources": staticmethod(lambda: resources)})


@pytest.mark.parametrize("resources, options, expected", [
    ({"CPU": 16, "GPU": 2}, {}, (2, 1.0)),
    ({"CPU": 16, "GPU": 2}, {"actors_per_gpu": 3}, (6, 1 / 3)),
    ({"CPU": 16, "GPU": 2}, {"actors": 3, "actors_per_gpu": 2}, (3, 0.5)),
    ({"CPU": 8}, {}, (4, 0.0)),
    ({"CPU": 2}, {}, (1, 0.0)),
])
def test_actors_and_their_gpu_share_follow_the_cluster(resources, options, expected):
    from audioscan.indexer.ray_cluster import actor_count as _actor_count
    from audioscan.indexer.ray_engine import RayOptions

    assert _actor_count(_cluster(resources), RayOptions(**options)) == pytest.approx(expected)


@pytest.mark.parametrize("resources, options", [
    ({"CPU": 16, "GPU": 2}, {"actors": 3}),  # a third actor would wait for a GPU for ever
    ({"CPU": 1}, {}),  # nothing left to decode on
])
def test_actor_pools_that_could_never_start_are_one_sentence(resources, options):
    from audioscan.indexer.errors import EngineError
    from audioscan.indexer.ray_cluster import actor_count as _actor_count
    from audioscan.indexer.ray_engine import RayOptions

    with pytest.raises(EngineError, match="give actors"):
        _actor_count(_cluster(resources), RayOptions(**options))


# ------------------------------------------------------------------ the cluster as a build meets it
class _FakeRay:
    """A stand-in for ``ray``: nodes that come and go, free resources, and what init was given."""

    def __init__(self, nodes: list[dict], free: dict | None = None) -> None:
        self.node_list, self.free, self.inits = nodes, free or {}, []

    def nodes(self) -> list[dict]:
        return self.node_list

    def available_resources(self) -> dict:
        return self.free

    def init(self, **kwargs) -> None:
        self.inits.append(kwargs)


def test_a_build_that_gets_no_results_says_why_and_stops_keeping_its_work(monkeypatch):
    """A lost node whose CPUs were the only ones free: notices name it, then one sentence after the wait."""
    import threading

    from audioscan.indexer import ray_cluster
    from audioscan.indexer.errors import EngineError

    worker = {"NodeID": "w", "NodeManagerAddress": "10.0.0.2", "Alive": True}
    fake = _FakeRay([{"NodeID": "h", "NodeManagerAddress": "10.0.0.1", "Alive": True}, worker], {"CPU": 0})
    never = threading.Event()

    def stalled():
        yield {"first": 1}
        worker["Alive"] = False
        never.wait(30)
        yield {"late": 1}

    monkeypatch.setattr(ray_cluster, "STALL_NOTICE", 0.2)
    monkeypatch.setattr(ray_cluster, "NODE_CHECK", 0.05)
    notices: list[str] = []
    results = ray_cluster.watched(fake, stalled(), wait=0.6, notice=notices.append)
    assert next(results) == {"first": 1}
    with pytest.raises(EngineError, match=r"no progress for 1 s .*node\(s\) 10.0.0.2 \(node w\) left it.*resume"):
        next(results)
    never.set()
    assert "10.0.0.2 (node w) left the Ray cluster" in notices[0]  # said at once, before any stall
    stalls = [text for text in notices if text.startswith("no results")]
    assert stalls and all("0 CPU(s)" in text and "10.0.0.2" in text for text in stalls)


def test_ray_address_from_the_environment_is_joined_and_ray_cpus_beside_it_refused(monkeypatch):
    from audioscan.indexer import ray_engine
    from audioscan.indexer.errors import EngineError
    from audioscan.models.base import LoadOptions

    fake = _FakeRay([])
    fake.is_initialized = lambda: False
    fake.shutdown = lambda: None
    fake.exceptions = type("exceptions", (), {"RayError": RuntimeError})
    monkeypatch.setattr(ray_engine, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_engine, "_stream", lambda *args, **kwargs: iter(()))
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert list(ray_engine.embed_on_ray([], {}, LoadOptions(), 4, ray_engine.RayOptions())) == []
    assert fake.inits[0]["address"] == "head:6379" and "num_cpus" not in fake.inits[0]
    with pytest.raises(EngineError, match="drop ray_cpus"):
        list(ray_engine.embed_on_ray([], {}, LoadOptions(), 4, ray_engine.RayOptions(num_cpus=2)))


@pytest.mark.parametrize("raised, words", [
    (ValueError("Ray Client requires pip package `ray[client]`. If you installed the minimal Ray..."),
     "Ray Client address, which needs Ray's client package"),
    (ConnectionError("InvalidAuthToken: the token does not match"), "refused this machine's authentication token"),
    (ConnectionError("Could not find any running Ray instance"), "cannot reach the Ray cluster at ray://head:10001"),
])
def test_every_way_joining_fails_is_one_sentence(raised, words):
    from audioscan.indexer import ray_cluster
    from audioscan.indexer.errors import EngineError
    from audioscan.indexer.ray_engine import RayOptions

    fake = _FakeRay([])

    def init(**kwargs):
        raise raised

    fake.init = init
    with pytest.raises(EngineError, match=re.escape(words)) as caught:
        ray_cluster.join(fake, "ray://head:10001", RayOptions())
    assert "\n" not in str(caught.value)


def test_a_file_a_worker_cannot_see_names_the_node_and_the_way_out(monkeypatch):
    """The decoder's side alone (the cluster test below hides the media from a real node)."""
    import ray

    from audioscan.indexer.ray_engine import _decode_rows, _outcome

    node = type("Context", (), {"get_node_id": staticmethod(lambda: "ab12cd34" + "0" * 48)})
    monkeypatch.setattr(ray, "get_runtime_context", lambda: node)  # no Ray started for this
    batch = {"job": np.array([3]), "path": np.array(["/nowhere/door.mp3"], dtype=object),
             "cuts": np.array(["[[1, 16000, 8000, 1000]]"], dtype=object), "hash_it": np.array([False])}
    [row] = list(_decode_rows(batch, 4, None))
    failed = _outcome(3, row["outcome"][0])
    assert failed.retry and "on Ray node" in failed.reason and "(node ab12cd34)" in failed.reason
    assert "--ship-media" in failed.reason


def test_a_model_missing_on_one_node_stops_the_build_before_decoding_and_names_the_node():
    """A real two-node cluster: the models load on the head and not on the worker."""
    import ray
    from ray.cluster_utils import Cluster

    from audioscan.errors import UserError
    from audioscan.indexer.errors import EngineError
    from audioscan.indexer.ray_cluster import check_models

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    worker = cluster.add_node(num_cpus=1, resources={"worker": 1})
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        worker_id = worker.node_id

        def load_here():
            if ray.get_runtime_context().get_node_id() == worker_id:
                raise UserError("BIRDNET is not installed; pip install 'audioscan[birdnet]'")

        with pytest.raises(EngineError) as caught:
            check_models(ray, load_here, 0.0)
        said = str(caught.value)
        assert "BIRDNET is not installed" in said and f"(node {worker_id[:8]})" in said and "the others" in said
    finally:
        ray.shutdown()
        cluster.shutdown()


def _non_default(name: str, default):
    return {"ray_address": "auto", "ray_cpus": "2", "readers": "3", "actors": "1", "max_actors": "2",
            "actors_per_gpu": "2", "gpus_per_actor": "0.5", "resources": '{"x": 1}',
            "runtime_env": '{"env_vars": {"A": "1"}}', "ray_wait": "30"}[name]


def test_every_ray_option_without_the_ray_engine_is_refused_by_name(tmp_path, library_template):
    """Generated from the options the CLI declares: none is ignored by a local build."""
    from click.testing import CliRunner

    from audioscan.cli import main
    from audioscan.cli.cluster import RAY_OPTIONS

    for name, default, _ in RAY_OPTIONS:
        flag = "--" + name.replace("_", "-")
        value = [] if isinstance(default, bool) else [_non_default(name, default)]
        if name == "ship_media":
            value = []
        result = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "index", "build", str(library_template),
                                           flag, *value])
        assert result.exit_code == 2 and f"{flag} goes with --engine ray" in result.output, (flag, result.output)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("args, words", [
    (["--resources", "{oops"], "is not a JSON object"),
    (["--resources", '{"gpu-big": -1}'], "positive amounts"),
    (["--runtime-env", "[1, 2]"], "JSON object of Ray's runtime_env"),
    (["--readers", "3"], "--readers serves --ship-media"),
])
def test_ray_option_values_that_cannot_work_are_one_sentence(tmp_path, library_template, args, words):
    from click.testing import CliRunner

    from audioscan.cli import main

    result = CliRunner().invoke(main, ["--store", str(tmp_path / "store"), "index", "build", str(library_template),
                                       "--engine", "ray", *args])
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output


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
        _assert_same_store(store, local)
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
        write_media(library / f"take{i:02d}.flac", scene(60, 16_000, "rain", [("siren", 10, 20)], seed=i), 16_000)
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
        assert _ray_lines(first) == []
        said = [line.strip() for line in first.stderr.splitlines() if "not found at this path" in line]
        assert len(said) == 1 and said[0].startswith("folder with space/e.mp4: not found at this path on Ray node ")
        assert f"(node {node_id[:8]})" in said[0] and "--ship-media" in said[0]  # the node, and the way out
        assert json.loads(first.stdout)["files_failed"] == len(_failures(local)) + 1
        failed = {str(Path(path).relative_to(library)): error for path, error in _failures(store).items()}
        expected = {str(Path(path).relative_to(library_template)): error for path, error in _failures(local).items()}
        assert failed == {**expected, "folder with space/e.mp4": said[0].split(": ", 1)[1]}  # retried by the next
        seen = [window for window in live_windows(local) if window[1] != "folder with space/e.mp4"]
        assert live_windows(store) == seen  # every file the worker could see, indexed as locally
        with Store.open(store) as opened:
            assert check_store(opened) == []

        shipped = subprocess.run(command + ["--ship-media"], capture_output=True, text=True, timeout=240)
        assert shipped.returncode == 0 and "Traceback" not in shipped.stderr, shipped.stderr
        assert json.loads(shipped.stdout)["files_indexed"] == 1  # the one file, read through the driver's machine
        _assert_same_store(store, local)
        assert len(_failures(store)) == len(expected)  # the broken files, as a local build has them
    finally:
        if node is not None:
            _stop_hidden_node(node, temp_dir)
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
