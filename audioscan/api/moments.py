"""Moments out and in: writing them in other programs' formats, reading times people type.

A :class:`Moment` is what every list of results is made of (search hits, detections,
suggestions, labels to export); these functions are the one way front-ends print,
write and read them.
"""

from audioscan.query.export import moments_text, write_file, write_moments
from audioscan.query.filters import MomentFilter
from audioscan.query.formats import table_csv
from audioscan.query.summary import PERIODS
from audioscan.query.moments import Moment
from audioscan.query.timecode import parse_time, timecode

__all__ = ["Moment", "MomentFilter", "PERIODS", "moments_text", "parse_time", "table_csv", "timecode", "write_file",
           "write_moments"]
