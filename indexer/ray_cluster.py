"""The Ray cluster as a build meets it: joining it (every address form Ray takes, its errors as
sentences), checking every node before the work starts, and watching the work for stalls.

``ray_engine`` holds the pipeline; this module holds what a build needs to know about the
machines it runs on, so a lost node, a node without the model, a wrong address or a refused
token is one sentence (or a visible wait) instead of a silent hang or a remote traceback.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from queue import Empty, Queue
from threading import Thread
from typing import TYPE_CHECKING, Any, Callable, Iterator

from audioscan.errors import UserError
from audioscan.indexer.errors import EngineError
from audioscan.models import threads

if TYPE_CHECKING:
    from audioscan.indexer.ray_engine import RayOptions

INSTALL_HINT = 'pip install "audioscan[ray]"'
# Seconds without a result before a build says why it waits (then again each as long).
STALL_NOTICE = 60.0
# Seconds between two looks at which nodes are alive: a node lost is said within this.
NODE_CHECK = 5.0
_DONE = object()  # the end of the results, as the watching thread hands it over


# A line of the log of Ray's core (C++) below FATAL (its critical, "C"), in its text or its JSON form
# (RAY_BACKEND_LOG_JSON=1): "[2026-01-01 10:00:00,123 E 4242 4243] core_worker.cc:2465: ...".
_CORE_LINE = re.compile(rb"(\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [TDIWE] \d+ \d+\] "
                        rb'|\{"asctime":"[^"\n]*","levelname":"[TDIWE]")[^\n]*(\n|\Z)')


@contextmanager
def ray_output() -> Iterator[None]:
    """For a Ray session, standard output carries only audioscan's output, and standard error no
    line of the log of Ray's core.

    Ray's processes (a local Ray's raylet and workers, their state dumps) write to the descriptors
    they inherit, so standard output is standard error for the session.  Ray's core in this process
    logs to its file (python-core-driver-*.log in the session's logs) and writes a copy of each line
    of ERROR and above to standard error, calling errors what are none for a build: every Ray Data
    actor pool has "Actor ... has constructor arguments in the object store and max_restarts > 0"
    (Ray Data hands its actors its own object refs).  The core's one switch, RAY_BACKEND_LOG_LEVEL,
    would empty its file too, and prints a line of its own.  So standard error goes through a
    process of its own that leaves out those copies and passes all else as it comes: audioscan's
    lines, a traceback, a FATAL line of the core (written as the core ends this process: a thread
    of it would end too).  A failure still reaches the build as Ray's exception, one sentence."""
    sys.stdout.flush()
    sys.stderr.flush()
    read, write = os.pipe()
    try:
        kept = subprocess.Popen([sys.executable, "-c", f"from {__name__} import without_core_log; without_core_log()"],
                                stdin=read, stdout=2, start_new_session=True)
    except BaseException:
        os.close(write)
        raise
    finally:
        os.close(read)
    saved_out, saved_err = os.dup(1), os.dup(2)
    try:
        os.dup2(write, 2)
        os.dup2(write, 1)
        os.close(write)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        # What passed through the filter comes before what follows; a process Ray left holding the
        # pipe would keep it open, and the filter then ends with that process.
        with suppress(subprocess.TimeoutExpired):
            kept.wait(10)


def without_core_log(source: int = 0, sink: int = 1) -> None:
    """Copy ``source`` to ``sink`` as it comes, less the lines of Ray's core log below FATAL: the
    filter :func:`ray_output` starts (in a session of its own, so Ctrl-C is for the build alone)."""
    held = b""
    while chunk := os.read(source, 1 << 16):
        passed, held = core_lines_left_out(held + chunk)
        view = memoryview(passed)
        while view:
            view = view[os.write(sink, view):]


def core_lines_left_out(data: bytes) -> tuple[bytes, bytes]:
    """``data`` less its lines of Ray's core log below FATAL, and the part to hold for the next
    read: a core line whose end has not come yet."""
    held = b""
    unended = _CORE_LINE.search(data, data.rfind(b"\n") + 1)  # in the last line, which has no end yet
    if unended:
        data, held = data[:unended.start()], data[unended.start():]
    return _CORE_LINE.sub(b"", data), held


def join(ray: Any, address: str | None, *, options: RayOptions) -> None:
    """Join the cluster at ``address`` (any form Ray takes: ``auto``, ``host:6379``, ``ray://host:10001``),
    or start Ray here; what Ray raises for a form it cannot use is one sentence."""
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR,
                     runtime_env=options.runtime_env)
        else:
            # "local": a Ray of its own, even where a cluster started with 'ray start' runs on this machine
            # (ray.init would join that one, and refuse num_cpus there).
            ray.init(address="local", num_cpus=options.num_cpus or threads.count(), include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR, runtime_env=options.runtime_env)
    except (ConnectionError, RuntimeError) as err:
        raise explained(err, address) from None
    except ValueError as err:
        if "ray[client]" in str(err):
            raise EngineError(f"{address} is a Ray Client address, which needs Ray's client package; install it with "
                              f"'{INSTALL_HINT}' (it brings ray[client])") from None
        raise EngineError(f"Ray cannot start with {address or 'a local cluster'}: {first_line(err)}") from None


def explained(err: Exception, address: str | None) -> EngineError:
    """One sentence for a cluster failure: the user's own mistake as we would word it locally."""
    cause = getattr(err, "cause", None) or err
    if isinstance(cause, UserError):
        return EngineError(f"on the Ray cluster: {cause.template}")
    text = f"{type(cause).__name__}: {cause}"
    if "auth" in text.lower():
        return EngineError(f"the Ray cluster at {address} refused this machine's authentication token ("
                           f"{first_line(cause)}); copy the cluster's token (~/.ray/auth_token on the head node, or "
                           "RAY_AUTH_TOKEN) to this machine, then run the build again")
    if isinstance(err, ConnectionError):
        return EngineError(f"cannot reach the Ray cluster at {address} ({first_line(err)}); check `ray_address` "
                           "(or RAY_ADDRESS) and that 'ray status' works from this machine")
    return EngineError(f"the Ray cluster failed ({type(cause).__name__}: {first_line(cause)}); the files committed "
                       "so far are kept, and running the build again resumes")


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:300] if text else type(err).__name__


def check_models(ray: Any, load_models_here: Callable[[], object], *, gpus: float) -> None:
    """Load the models on every node that could host an embedding actor, before any file is
    decoded: a node without the model's package, its weights or its GPU is one sentence naming the
    node now, instead of actors that fail there (or that Ray restarts for ever) mid-build."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_gpus=gpus, num_cpus=0 if gpus else 1, max_retries=0)
    def load_models() -> None:
        load_models_here()

    need = ("GPU", gpus) if gpus else ("CPU", 1)
    nodes = [node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get(need[0], 0) >= need[1]]
    checks = {node_named(node["NodeManagerAddress"], node["NodeID"]): load_models.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)).remote() for node in nodes}
    failed: dict[str, BaseException] = {}
    for where, check in checks.items():
        try:
            ray.get(check)
        except ray.exceptions.RayTaskError as err:
            failed[where] = getattr(err, "cause", None) or err
    if not failed:
        return
    cause = next(iter(failed.values()))
    said = cause.template if isinstance(cause, UserError) else first_line(cause)
    where = "" if len(failed) == len(checks) else f" (on node(s) {', '.join(sorted(failed))}; the others load it)"
    raise EngineError(f"on the Ray cluster: {said}{where}; every node that runs embedding actors needs the same "
                      "audioscan, models and weights")


def watched(ray: Any, batches: Iterator[dict], *, wait: float, notice: Callable[[str], None]) -> Iterator[dict]:
    """``batches`` as they come, watched.  A node that leaves is said at once (every
    :data:`NODE_CHECK` seconds the cluster is asked), while Ray reschedules its work; a build that
    gets nothing for :data:`STALL_NOTICE` seconds says why it waits (the resources free, the nodes
    gone), and after ``wait`` seconds of nothing stops with one sentence; the files committed so
    far are kept and the next build resumes."""
    queue: Queue = Queue(maxsize=4)

    def pump() -> None:
        try:
            for batch in batches:
                queue.put(batch)
            queue.put(_DONE)
        except BaseException as err:  # handed to the driver, which raises it
            queue.put(err)

    nodes = _alive(ray)
    said_lost: set[str] = set()
    Thread(target=pump, daemon=True, name="ray-results").start()
    quiet_since = checked = time.monotonic()
    noticed = 0.0
    while True:
        try:
            item = queue.get(timeout=min(NODE_CHECK, wait))
        except Empty:
            item = None
        now = time.monotonic()
        if now - checked >= NODE_CHECK:
            checked = now
            lost = sorted(set(nodes.values()) - set(_alive(ray).values()) - said_lost)
            if lost:
                said_lost.update(lost)
                notice(f"node(s) {', '.join(lost)} left the Ray cluster; their work goes to the nodes that remain, "
                       "if they have room")
        if item is None:
            quiet = now - quiet_since
            if quiet >= wait:
                raise EngineError(f"the Ray build made no progress for {quiet:.0f} s ({_waiting(ray, nodes)}); the "
                                  "files committed so far are kept: add nodes or free resources, then run the build "
                                  "again to resume")
            if quiet - noticed >= min(STALL_NOTICE, wait):
                noticed = quiet
                notice(f"no results for {quiet:.0f} s: {_waiting(ray, nodes)}; waiting up to {wait:.0f} s "
                       "(Ctrl-C stops, keeping what is committed)")
            continue
        quiet_since, noticed = now, 0.0
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def node_named(address: str, node_id: str) -> str:
    """A node as the user reads it: several nodes may share one address (raylets on one machine)."""
    return f"{address} (node {node_id[:8]})"


def _alive(ray: Any) -> dict[str, str]:
    """Node id -> name of the cluster's live nodes."""
    return {node["NodeID"]: node_named(node["NodeManagerAddress"], node["NodeID"]) for node in ray.nodes()
            if node.get("Alive")}


def _waiting(ray: Any, nodes_at_start: dict[str, str]) -> str:
    """What the cluster lacks: free CPUs and GPUs, and the nodes gone since the build started."""
    alive = _alive(ray)
    lost = sorted(address for node, address in nodes_at_start.items() if node not in alive)
    free = ray.available_resources()
    said = f"{free.get('CPU', 0):g} CPU(s) and {free.get('GPU', 0):g} GPU(s) free on the cluster"
    return said + (f", node(s) {', '.join(lost)} left it" if lost else "")


def actor_count(ray: Any, options: RayOptions) -> tuple[int, float]:
    """How many embedding actors to start with, and the GPU share each holds."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if options.max_actors is not None and options.actors is not None and options.max_actors < options.actors:
        raise EngineError(f"`max_actors` {options.max_actors} is below `actors` {options.actors}; the pool starts "
                          "at actors and grows to max_actors")
    if gpus or options.gpus_per_actor:
        per_actor = options.gpus_per_actor or 1.0 / max(1, options.actors_per_gpu)
        actors = options.actors or max(1, int(gpus / per_actor + 1e-9))
        if gpus and actors * per_actor > gpus + 1e-9:  # the pool would wait for ever on actors with no GPU left
            raise EngineError(f"{actors} embedding actor(s) at {per_actor:g} GPU each need "
                              f"{actors * per_actor:g} GPUs and the Ray cluster has {gpus}; give `actors` "
                              f"{int(gpus / per_actor + 1e-9)} or fewer, or a smaller GPU share per actor")
        return actors, per_actor
    cpus = int(resources.get("CPU", 0))
    actors = options.actors or max(1, cpus // 2)
    if actors > cpus - 1:  # actors holding every CPU would wait for ever on decoders that cannot start
        raise EngineError(f"the Ray cluster has {cpus} CPU(s) and no GPU, so {actors} embedding actor(s) would "
                          "leave no CPU to decode on; give `actors` "
                          f"{max(1, cpus - 1)} or fewer" + ("" if cpus > 1 else ", on a cluster of 2 CPUs or more"))
    return actors, 0.0
