"""Reading back what ``labels list`` writes for video editors: a CMX 3600 EDL and a markers CSV.

Both hold whole frames and a file's name rather than its path (``formats.to_edl``,
``formats.to_markers``).  A row comes back on the one indexed file of that name, at the frame it
was written at: within half a frame of the label, at the rate the writer used - the file's own
rate for markers, and for an EDL the one rate of the whole list, the one most of its files have
(the writer's rule, so the same list gives the same rate).
"""

from __future__ import annotations

import csv
import io
import re
from typing import Callable

from audioscan.query.errors import QueryError, quoted
from audioscan.query.formats import unsafe_cell
from audioscan.query.labels import LabelRow, every_row, label_row
from audioscan.query.timecode import parse_timecode

# A file name's frame rate (None for audio, counted at timecode.DEFAULT_FPS), as the store knows it.
FrameRate = Callable[[str], "float | None"]
MARKER_COLUMNS = ["Marker Name", "Description", "In", "Out", "Duration", "Marker Type", "File"]
_TIMECODE = re.compile(r"\d{2}:\d{2}:\d{2}[:;]\d{2}")
# What ``formats._score_and_peak`` puts after a label in a note.
_SCORE_AND_PEAK = re.compile(r"(?: ?score -?\d+\.\d+)?(?: ?peak \d{2}:\d{2}:\d{2}:\d{2})?$")


def looks_like_edl(text: str) -> bool:
    return text.lstrip().startswith("TITLE:")


def looks_like_markers(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0].strip()
    return first.split(",")[:len(MARKER_COLUMNS)] == MARKER_COLUMNS


def _seconds(text: str, fps: float | None, what: str, where: str) -> float:
    if not _TIMECODE.fullmatch(text.strip()):
        raise QueryError(f"{where}: {quoted(text)} is not an HH:MM:SS:FF timecode for {what}")
    return parse_timecode(text.replace(";", ":"), fps)


class _Event:
    """A cut event of an EDL as read: its line, source in and out, and the notes below it."""

    def __init__(self, number: int, source_in: str, *, source_out: str) -> None:
        self.number, self.source_in, self.source_out = number, source_in, source_out
        self.clip: str | None = None
        self.note = ""


def _edl_events(text: str, source: str) -> list[_Event]:
    """The cut events of a CMX 3600 list: an event line ends in four timecodes (source in/out,
    record in/out); ``* FROM CLIP NAME:`` and ``* COMMENT:`` notes follow it."""
    events: list[_Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if tokens and tokens[0].isdigit() and len(tokens) >= 6:
            if not all(_TIMECODE.fullmatch(token) for token in tokens[-4:]):
                raise QueryError(f"{source}:{number}: an event line that does not end in four timecodes; "
                                 "is it a CMX 3600 EDL?")
            events.append(_Event(number, tokens[-4], source_out=tokens[-3]))
        elif events and line.startswith("* FROM CLIP NAME:"):
            events[-1].clip = line.removeprefix("* FROM CLIP NAME:").strip()
        elif events and line.startswith("* COMMENT:"):
            events[-1].note = line.removeprefix("* COMMENT:").strip()
    return events


def parse_edl(text: str, source: str, *, rate: FrameRate, media: str | None, label: str | None,
              negative: bool) -> list[LabelRow]:
    """A row per cut event: the clip's file, the comment's label (less the score and peak the
    writer adds), the source in and out as start and end."""
    events = _edl_events(text, source)
    rates = [found for found in (rate(media or event.clip or "") for event in events) if found]
    fps = max(rates, key=rates.count) if rates else None

    def row_of(number: int, event: _Event) -> LabelRow:
        where = f"{source}:{number}"
        path = media or event.clip
        name = label or _SCORE_AND_PEAK.sub("", event.note)
        if not path or not name:
            raise QueryError(f"{where}: the event needs a '* FROM CLIP NAME:' and a '* COMMENT:' with its label "
                             "(or give `media` and `label`)")
        return label_row(path, name, start=_seconds(event.source_in, fps, "the source in", where),
                         end=_seconds(event.source_out, fps, "the source out", where), negative=negative, where=where)

    return every_row(row_of, [(event.number, event) for event in events], source=source)


def parse_markers(text: str, source: str, *, rate: FrameRate, media: str | None, label: str | None,
                  negative: bool) -> list[LabelRow]:
    """A row per marker: ``File`` (a name), ``Marker Name`` as the label, ``In`` and ``Out`` at the
    file's frame rate."""
    reader = csv.reader(io.StringIO(text))
    numbered = []
    try:
        for row in reader:
            if row and any(cell.strip() for cell in row):
                numbered.append((reader.line_num, row))
    except csv.Error as err:
        raise QueryError(f"{source}:{reader.line_num}: {err}; is it a markers CSV?") from None

    def row_of(number: int, row: list[str]) -> LabelRow:
        where = f"{source}:{number}"
        cells = dict(zip(MARKER_COLUMNS, (unsafe_cell(cell.strip()) for cell in row)))
        path = media or cells.get("File", "")
        name = label or cells.get("Marker Name", "")
        if not path or not name:
            raise QueryError(f"{where}: the marker needs a File and a Marker Name (or give `media` and `label`)")
        fps = rate(path)
        return label_row(path, name, start=_seconds(cells.get("In", ""), fps, "In", where),
                         end=_seconds(cells.get("Out", ""), fps, "Out", where), negative=negative, where=where)

    return every_row(row_of, numbered[1:], source=source)
