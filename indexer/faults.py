"""Crash points for the crash-safety tests.

The store promises that a build killed at *any* moment leaves a consistent store.
The dangerous moments are between two durable steps (a segment renamed into place
but not yet in the catalog, a catalog commit just made), and a timer-based kill
rarely lands there.  Setting ``AUDIOSCAN_CRASH_AT=point[:n]`` makes the process
SIGKILL itself the n-th time it reaches ``point``, so the tests can prove each case.
Unset, this costs one dictionary lookup per commit.
"""

from __future__ import annotations

import os
import signal

_ENV = "AUDIOSCAN_CRASH_AT"
_hits: dict[str, int] = {}


def crash_point(point: str) -> None:
    """SIGKILL this process here if the test environment asked for it."""
    wanted = os.environ.get(_ENV)
    if not wanted:
        return
    name, _, nth = wanted.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
