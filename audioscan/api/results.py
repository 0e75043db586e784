"""Result lists of the API: hits or detections that convert to pyarrow tables."""

from __future__ import annotations

import builtins
from dataclasses import replace
from typing import Iterable

import pyarrow as pa

from audioscan.indexer.store.snapshot import MediaInfo
from audioscan.query.moments import Moment

Detection = Moment  # a detection is a moment whose score is a probability


class Results(builtins.list):
    """A list of :class:`Moment` (search hits or detections) that converts to a pyarrow table."""

    def to_arrow(self) -> pa.Table:
        """Every field a moment says about the sound, one row each (empty where it does not say); ``datetime``
        is the start's clock time as ISO 8601 (its offset differs between zones, so it stays text)."""
        return pa.table({
            "path": pa.array([h.path for h in self], pa.string()),
            "start": pa.array([h.start for h in self], pa.float64()),
            "end": pa.array([h.end for h in self], pa.float64()),
            "score": pa.array([h.score for h in self], pa.float64()),
            "peak": pa.array([h.peak for h in self], pa.float64()),
            "onset": pa.array([h.onset for h in self], pa.float64()),
            "offset": pa.array([h.offset for h in self], pa.float64()),
            "label": pa.array([h.label for h in self], pa.string()),
            "decision": pa.array([h.decision for h in self], pa.float64()),
            "datetime": pa.array([h.iso_start() for h in self], pa.string()),
            "site": pa.array([h.site for h in self], pa.string()),
            "channel": pa.array([h.channel for h in self], pa.int16()),
        })


def placed(found: Iterable[Moment], media: Iterable[MediaInfo]) -> Results:
    """Moments with their files' recording starts and sites, which give them clock times."""
    by_path = {item.path: item for item in media}
    return Results(replace(m, recording=by_path[m.path].recorded, site=by_path[m.path].site)
                   if m.path in by_path else m for m in found)
