"""``index build --engine ray`` on a real local Ray (2 CPUs): the same store as a local build,
the same failures, and a driver killed mid-build that resumes like a local one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from audioscan.indexer.build import Target
from audioscan.indexer.media.decode import decode_all
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.media.windows import WindowSpec
from audioscan.indexer.store.check import check_store
from audioscan.indexer.store.store import Store
from tests.cluster.helpers import assert_same_store, failures, ray_build, ray_lines
from tests.indexer.helpers import build_once, live_windows

pytest.importorskip("ray", reason="the Ray engine is the optional extra audioscan[ray]; make test installs it")


@pytest.mark.parametrize("ship", [False, True], ids=["shared-storage", "ship-media"])
def test_a_ray_build_stores_what_a_local_build_stores(tmp_path, library_template, local, ship):
    store = tmp_path / "store"
    result = ray_build(store, library_template, *(["--ship-media"] if ship else []))
    assert result.returncode == 0, result.stderr
    assert_same_store(store, local)
    assert failures(store) == failures(local) and len(failures(local)) == 4
    for name in ("empty.wav", "garbage.mp4", "silent.flac", "no-audio.mp4"):
        assert name in result.stderr  # reported on the spot, as a local build reports them
    assert ray_lines(result) == []  # nothing of Ray's internals (its core's "constructor arguments" line...)
    again = ray_build(store, library_template)
    assert again.returncode == 0 and "0 windows embedded" in again.stdout  # nothing re-embedded


def test_a_killed_driver_leaves_a_clean_store_that_resumes(tmp_path, library_template, local):
    store = tmp_path / "store"
    killed = ray_build(store, library_template, "--commit-every", "0", crash_at="embedded:5")
    assert killed.returncode == -signal.SIGKILL
    with Store.open(store) as opened:
        assert check_store(opened) == []
    done_before = {path for _, path, _, _ in live_windows(store)}
    assert 0 < len(done_before) < len({path for _, path, _, _ in live_windows(local)})
    resumed = ray_build(store, library_template, "--format", "json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["files_indexed"] > 0  # stdout is audioscan's JSON, nothing of Ray's
    assert_same_store(store, local)


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
    result = ray_build(tmp_path / "store", library_template, "--device", "cuda:7")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "on the Ray cluster: --device cuda:7" in result.stderr


def test_actors_that_would_leave_no_cpu_to_decode_are_refused(tmp_path, library_template):
    result = ray_build(tmp_path / "store", library_template, "--actors", "2")
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
    assert list(ray_engine.embed_on_ray([], {}, load=LoadOptions(), batch_size=4,
                                        options=ray_engine.RayOptions())) == []
    assert fake.inits[0]["address"] == "head:6379" and "num_cpus" not in fake.inits[0]
    with pytest.raises(EngineError, match="drop ray_cpus"):
        list(ray_engine.embed_on_ray([], {}, load=LoadOptions(), batch_size=4,
                                     options=ray_engine.RayOptions(num_cpus=2)))


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
        ray_cluster.join(fake, "ray://head:10001", options=RayOptions())
    assert "\n" not in str(caught.value)


def test_a_file_a_worker_cannot_see_names_the_node_and_the_way_out(monkeypatch):
    """The decoder's side alone (the cluster test below hides the media from a real node)."""
    import ray

    from audioscan.indexer.ray_engine import _decode_rows, _outcome

    node = type("Context", (), {"get_node_id": staticmethod(lambda: "ab12cd34" + "0" * 48)})
    monkeypatch.setattr(ray, "get_runtime_context", lambda: node)  # no Ray started for this
    batch = {"job": np.array([3]), "path": np.array(["/nowhere/door.mp3"], dtype=object),
             "cuts": np.array(["[[1, 16000, 8000, 1000, false]]"], dtype=object), "hash_it": np.array([False])}
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
            check_models(ray, load_here, gpus=0.0)
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


def test_a_ray_build_hears_each_channel_apart_as_a_local_build_does(tmp_path):
    """``--channels split`` on the cluster: every channel's windows, with the vectors a local build gives."""
    media = tmp_path / "media"
    write_media(media / "pair.flac", np.stack([scene(20, 16_000, background="rain", events=[("siren", 4, 8)], seed=1),
                                               scene(20, 16_000, background="hum", events=[("knock", 12, 13)],
                                                     seed=2)]), rate=16_000)
    result = ray_build(tmp_path / "ray", media, "--channels", "split")
    assert result.returncode == 0, result.stderr
    local = tmp_path / "local"
    build_once(local, media, targets=[Target("LOGMEL", WindowSpec(), "split")], batch_size=4)

    def by_window(store):
        with Store.open(store) as opened:
            snapshot = opened.snapshot(opened.find_set())
            vectors = snapshot.vectors()
        return {(int(c), round(float(s), 6)): v for c, s, v in zip(snapshot.channels, snapshot.starts, vectors)}

    ours, theirs = by_window(tmp_path / "ray"), by_window(local)
    assert sorted(ours) == sorted(theirs) and {channel for channel, _ in ours} == {1, 2}
    assert all(np.allclose(ours[key], theirs[key], atol=1e-4) for key in theirs)
