"""Result lists of the API: hits or detections that convert to pyarrow tables."""

from __future__ import annotations

import builtins

import pyarrow as pa

from audioscan.query.moments import Moment

Detection = Moment  # a detection is a moment whose score is a probability


class Results(builtins.list):
    """A list of :class:`Moment` (search hits or detections) that converts to a pyarrow table."""

    def to_arrow(self) -> pa.Table:
        """Every field a moment says about the sound, one row each (empty where it does not say)."""
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
        })
