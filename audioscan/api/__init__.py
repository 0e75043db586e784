"""The Python API: everything the CLI does, for notebooks and scripts.

>>> import audioscan
>>> lib = audioscan.open("lib.idx")                 # opens nothing for writing
>>> lib.build("~/Videos", models=["LOGMEL"])        # takes the writer lock for the build only
>>> lib.build("/shared/archive", ray=audioscan.RayOptions(address="auto"))  # embed on a Ray cluster
>>> hits = lib.search("clip.wav", k=10)             # or lib.search(("ep01.mkv", 754.0))
>>> lib.labels.add("ep01.mkv", 754, 758, "gag")
>>> det = lib.train("gag")
>>> found = det.rescore(threshold=0.8)             # detections, best first
>>> X, windows = lib.vectors("LOGMEL")              # memory-mapped vectors + a pyarrow table

Every read takes one snapshot of the store, so it sees one commit even while a build
runs in another process.  Results are lists that convert to pyarrow tables
(``.to_arrow()``), which pandas and polars read without audioscan depending on them.
Errors a user can fix are :class:`audioscan.UserError` with a one-sentence message.
"""

from __future__ import annotations

from pathlib import Path

from audioscan.api.detector import Detector
from audioscan.api.labels import Labels
from audioscan.api.library import Library
from audioscan.api.results import Detection, Results
from audioscan.indexer.ray_engine import RayOptions


def open(path: str | Path) -> "Library":  # noqa: A001 - the name people expect: audioscan.open
    """The store at ``path``; nothing is created or locked until something is written."""
    return Library(path)


__all__ = ["Detection", "Detector", "Labels", "Library", "RayOptions", "Results", "open"]
