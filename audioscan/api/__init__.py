"""The Python API: everything the CLI and the page do, for notebooks and scripts.

>>> import audioscan
>>> lib = audioscan.open("lib.idx")                 # opens nothing for writing
>>> lib.build("~/Videos", models=["LOGMEL"])        # takes the writer lock for the build only
>>> lib.build("/shared/archive", ray=audioscan.RayOptions(address="auto"))  # embed on a Ray cluster
>>> hits = lib.search("clip.wav", k=10)             # or lib.search(("ep01.mkv", 754.0))
>>> lib.labels.add("ep01.mkv", 754, 758, "gag")
>>> det = lib.train("gag")
>>> found = det.rescore(threshold=0.8)             # detections, best first
>>> X, windows = lib.vectors("LOGMEL")              # the vectors (a copy) + a pyarrow table of their windows
>>> audioscan.set_threads(2)                        # every thread pool; default: the cores this process may use

Every read takes one snapshot of the store, so it sees one commit even while a build
runs in another process.  Results are lists of :class:`Moment` that convert to pyarrow
tables (``.to_arrow()``), which pandas and polars read without audioscan depending on
them.  Errors a user can fix are :class:`UserError` with a one-sentence message.

This package is the one door of the CLI and the page (``tests/structure`` holds them to
it): ``library`` (building, searching, training, exporting), ``labels``, ``recordings`` (when and
where), ``detector``,
``results``, ``moments`` (formats and times),
``options`` (choices and defaults to offer), ``models`` (listing, fetching weights),
``previews`` (what the page plays and shows) and ``installation`` (``audioscan doctor``).
Names are loaded on first use, so a command that only lists models never loads FAISS.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioscan.errors import BusyError, NotFoundError, UserError

if TYPE_CHECKING:
    from audioscan.api.detector import Detector
    from audioscan.api.labels import Labels
    from audioscan.api.library import Library
    from audioscan.api.results import Detection, Results
    from audioscan.indexer.progress import Progress
    from audioscan.indexer.ray_engine import RayOptions
    from audioscan.query.moments import Moment

_LAZY = {"Detector": "audioscan.api.detector", "Labels": "audioscan.api.labels", "Library": "audioscan.api.library",
         "Detection": "audioscan.api.results", "Results": "audioscan.api.results",
         "Progress": "audioscan.indexer.progress", "RayOptions": "audioscan.indexer.ray_engine",
         "Moment": "audioscan.query.moments"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'audioscan.api' has no attribute {name!r}")


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in every pool of this process (FAISS, torch, BLAS, decoding, scoring).

    The default is ``AUDIOSCAN_THREADS``, else the cores this process may use (its affinity
    mask and cgroup quota); see :mod:`audioscan.models.threads`.
    """
    from audioscan.models import threads as pools

    pools.set_threads(threads)


def thread_count() -> int:
    """The threads every pool of this process uses (a bad ``AUDIOSCAN_THREADS`` is a :class:`UserError`)."""
    from audioscan.models import threads as pools

    return pools.count()


def open(path: str | Path) -> "Library":  # noqa: A001 - the name people expect: audioscan.open
    """The store at ``path``; nothing is created or locked until something is written."""
    from audioscan.api.library import Library

    return Library(path)


__all__ = ["BusyError", "Detection", "Detector", "Labels", "Library", "Moment", "NotFoundError", "Progress",
           "RayOptions", "Results", "UserError", "open"]
