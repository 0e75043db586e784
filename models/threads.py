"""How many threads audioscan's work may use: decided here, for every pool in the process.

FAISS, torch, the BLAS under numpy and scikit-learn, LiteRT, FFmpeg's decoders and our own
pools each start as many threads as the machine has cores unless told otherwise, and the
OpenMP ones (FAISS, torch) busy-wait between parallel regions.  On a shared machine (a
laptop with a browser open, a cluster node beside other jobs) that spinning steals the
cores the work needs: an index build beside two busy processes took 7x its idle time.
So one number, :func:`count`, sizes them all:

- ``--threads N`` (the CLI) or :func:`set_threads` (a library user), else
- ``AUDIOSCAN_THREADS``, else
- the cores this process may use: its affinity mask (``taskset``, a cluster's cpuset),
  capped by its cgroup's CPU quota (a container limited to 2 CPUs on a 64-core host).

A count given by either way is refused beyond ``PER_CORE_LIMIT`` threads a usable core.

:func:`prepare_runtime` runs when ``audioscan`` is imported, before any OpenMP runtime
starts (they read their settings once, when loaded): it asks OpenMP threads to sleep
rather than spin while they wait (``OMP_WAIT_POLICY=PASSIVE``) and sets the thread counts
the libraries read at load time.  Settings a user exported stay as they are.  A program
that imported torch or FAISS before audioscan keeps their spinning threads; import
audioscan first (or export ``OMP_WAIT_POLICY=PASSIVE``).
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from audioscan.models.errors import ModelError

ENV = "AUDIOSCAN_THREADS"
# What the libraries read when they load: OpenMP (FAISS, torch), MKL and OpenBLAS (numpy, sklearn).
_LOAD_TIME = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = (Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))

# Threads per usable core beyond which a count is taken for a slip (1000 for 10): past a few per
# core, threads only queue for the same cores and add switching and memory, and OpenMP pools spin
# up that many each; 8 leaves room to oversubscribe on purpose (decoders that wait on slow disks).
PER_CORE_LIMIT = 8

_chosen: int | None = None


def _quota(v2: Path = _CGROUP_V2, v1: tuple[Path, Path] = _CGROUP_V1) -> int | None:
    """The CPUs this process's cgroup may use per period, rounded up; None when unlimited."""
    try:
        limit, every = v2.read_text().split()[:2]
        return None if limit == "max" else max(1, math.ceil(int(limit) / int(every)))
    except (OSError, ValueError):
        pass
    try:
        quota, period = (int(path.read_text()) for path in v1)
        return None if quota <= 0 else max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may run on (affinity mask), capped by its cgroup's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _quota()
    return min(cores, quota) if quota else cores


def _from_env() -> int | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ModelError(f"{ENV}={text!r} is not a number of threads; give a whole number from 1 up, or unset it")
    _within_reach(value, f"{ENV}={text}", "or unset it")
    return value


def _within_reach(threads: int, given: str, instead: str) -> None:
    """Refuse a count far beyond the cores this process may use (see ``PER_CORE_LIMIT``): it is a slip,
    and obeying it would start that many threads in every pool without a word."""
    cores = usable_cores()
    if threads > PER_CORE_LIMIT * cores:
        raise ModelError(f"{given} is more than {PER_CORE_LIMIT} threads for each of the {cores} core(s) this "
                         f"process may use; give at most {PER_CORE_LIMIT * cores}, {instead}", value=threads)


def count() -> int:
    """The threads every pool of this process may use (see the module docstring for the order)."""
    return _chosen or _from_env() or usable_cores()


def prepare_runtime() -> None:
    """Before any OpenMP runtime loads: sleeping waits, and thread counts the libraries read then."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        threads = count()
    except ModelError:
        return  # said in one sentence by the first command that asks for the count
    for name in _LOAD_TIME:
        os.environ.setdefault(name, str(threads))


def set_threads(threads: int) -> None:
    """Use ``threads`` threads from now on: in the libraries already loaded, and in those loaded later."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ModelError(f"`threads` {threads!r} is not a number of threads; give a whole number from 1 up",
                         value=threads)
    _within_reach(threads, f"`threads` {threads}", "or leave `threads` out to use them all")
    global _chosen
    _chosen = threads
    for name in _LOAD_TIME:
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    if "faiss" in sys.modules:
        sys.modules["faiss"].omp_set_num_threads(threads)
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads)


@contextmanager
def faiss_on_this_thread_alone() -> Iterator[None]:
    """FAISS work of this thread runs on it alone for the ``with`` block.

    For many tiny parallel stretches (an index's product codes are hundreds of small k-means,
    one per pair of dimensions): each wakes the sleeping OpenMP threads for microseconds of
    work, so two threads took 3.5 s where one takes 0.5 s at 768 dimensions.  OpenMP keeps
    the setting per thread, so a search or a build in another thread keeps its threads."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
