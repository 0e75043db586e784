"""How many CPU cores this process may use: the one answer every thread pool asks.

The affinity mask, not the machine's count: a process pinned to two cores of a large
node (a cluster job, ``taskset``) that sized its pools by ``os.cpu_count()`` would run
many threads on those two and spend its time switching between them.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
