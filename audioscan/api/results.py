"""Result lists of the API: hits or detections that convert to pyarrow tables."""

from __future__ import annotations

import builtins

import pyarrow as pa

from audioscan.query.moments import Moment

Detection = Moment  # a detection is a moment whose score is a probability


class Results(builtins.list):
    """A list of :class:`Moment` (search hits or detections) that converts to a pyarrow table."""

    def to_arrow(self) -> pa.Table:
        return pa.table({
            "path": pa.array([h.path for h in self], pa.string()),
            "start": pa.array([h.start for h in self], pa.float64()),
            "end": pa.array([h.end for h in self], pa.float64()),
            "score": pa.array([h.score for h in self], pa.float64()),
        })
