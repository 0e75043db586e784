"""Reading label files: every format ``labels list`` writes (CSV, JSON, NDJSON, a Raven selection
table, an Audacity label track, and through ``editor_files`` an EDL and a markers CSV) and the
moments CSV ``export clips`` takes.

Every row is checked where it is read, and every bad row is reported as ``file:line: what`` (the
first few, then a count), so a person fixes the file in one go; nothing is stored from a file with
a bad row.  Rows come out as :class:`~audioscan.query.labels.LabelRow`, which ``labels`` places on
the store's media.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

from audioscan.query import editor_files, formats
from audioscan.query.editor_files import FrameRate
from audioscan.query.errors import QueryError, quoted
from audioscan.query.formats import unsafe_cell
from audioscan.query.labels import NEGATIVE_SUFFIX, SCORE_SUFFIX, LabelRow, every_row, label_row
from audioscan.query.timecode import parse_time
from audioscan.indexer.media.decode import MAX_SPLIT_CHANNELS
from audioscan.indexer.store.records import MIX_CHANNEL


def _parse_time(text: str, what: str, where: str) -> float:
    """Seconds or a clock time (12:34.5) in a label file."""
    try:
        return parse_time(text)
    except QueryError as err:
        raise QueryError(f"{where}: {err.template} for {what}") from None


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"{where}: {quoted(text)} is not a number of seconds for {what}") from None
    if not math.isfinite(value):
        raise QueryError(f"{where}: {quoted(text)} is not a finite number of seconds for {what}")
    return value


def read_text_file(path: Path) -> str:
    """A label file's text: UTF-8 with or without a byte-order mark, or one sentence."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise QueryError(f"{path.name} is not UTF-8 text; save it as UTF-8 (CSV UTF-8 in spreadsheet programs) "
                         "and import it again") from None
    except OSError as err:
        raise QueryError(f"cannot read {path} ({err.strerror or err})") from None
    if not text.strip():
        raise QueryError(f"{path.name} is empty; nothing to import")
    return text


def looks_like_raven(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return "Begin Time (s)" in first.split("\t")


def parse_raven(text: str, source: str, *, negative: bool) -> list[LabelRow]:
    """A row per selection of a Raven table (media None when it names no file); a label ending in
    " (negative)", as ``labels list --format raven`` writes negatives, is negative.

    ``Channel`` is the channel a selection marks, except in a table whose every selection says channel
    1: Raven numbers a mono file's only channel 1, BirdNET-Analyzer writes 1 for every file
    (BirdNET-Analyzer #144), and so do we for a whole file or a mix, so such a table says nothing
    about channels and its labels are of whole files."""
    found = formats.parse_raven(text, source)
    by_channel = any(cells[4].strip() not in ("", "1") for _, cells in found)

    def row_of(number: int, cells: tuple[str | None, str, float | None, float | None, str]) -> LabelRow:
        path, name, start, end, channel = cells
        where = f"{source}:{number}"
        if start is None or end is None:
            raise QueryError(f"{where}: the begin and end times are not numbers")
        return label_row(path, name, start=start, end=end, negative=negative, where=where,
                         channel=_channel_cell(channel, where) if by_channel else MIX_CHANNEL)

    return every_row(row_of, found, source=source)


def looks_like_audacity(text: str) -> bool:
    """An Audacity label track: tab-separated lines that start with two numbers."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    parts = first.split("\t")
    try:
        float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return False
    return True


# How a ``negative`` cell may say yes or no; pandas writes a column of 0/1 with gaps as 0.0/1.0.
_NEGATIVE_WORDS = {"true": True, "yes": True, "negative": True, "false": False, "no": False, "positive": False}
_BINARY = re.compile(r"([01])(?:\.0*)?")


def _channel_cell(text: object, where: str) -> int:
    """The channel a row marks: empty (or absent) for the whole file (0), else a whole number from 0 (the
    mix, the whole file) to the most channels a file is split into; anything else is a bad row."""
    word = "" if text is None else str(text).strip()
    if not word:
        return MIX_CHANNEL
    try:
        channel = int(float(word)) if re.fullmatch(r"\d+(?:\.0*)?", word) else -1
    except ValueError:
        channel = -1
    if not 0 <= channel <= MAX_SPLIT_CHANNELS:
        raise QueryError(f"{where}: {quoted(word)} in the channel column is not a channel; give a whole number "
                         f"from 1 to {MAX_SPLIT_CHANNELS}, or 0 or nothing for the whole file")
    return channel


def _negative_cell(text: str, where: str) -> bool:
    """Whether a ``negative`` cell says negative; anything but the spellings above is a bad row, never
    quietly a positive (``-``, ``+``, ``maybe`` and ``2`` say nothing certain)."""
    word = text.strip().lower()
    if not word:
        return False
    if word in _NEGATIVE_WORDS:
        return _NEGATIVE_WORDS[word]
    found = _BINARY.fullmatch(word)
    if found is None:
        raise QueryError(f"{where}: {quoted(text)} in the negative column is none of true/false, yes/no, 1/0 "
                         "or negative/positive")
    return found.group(1) == "1"


def parse_csv(text: str, source: str, *, label: str | None, negative: bool,
              need_label: bool = True) -> list[LabelRow]:
    """Rows of ``path,start,end,label[,negative]`` (a header, if present, may name the columns;
    extra columns such as ``score`` from ``rescore --format csv`` are ignored).  The delimiter
    (``,``, ``;`` or tab) is sniffed."""
    # Only the delimiter is guessed, from the first line (a header, or a row of a headerless file);
    # quoting follows the standard rules every spreadsheet and our own writer use, which a guess
    # over quote-laden labels got wrong.
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(first, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    numbered = []
    try:
        for row in reader:
            if row and any(c.strip() for c in row):
                numbered.append((reader.line_num, row))
    except csv.Error as err:  # a cell past the csv module's field limit, a NUL byte, a broken quote
        raise QueryError(f"{source}:{reader.line_num}: {err}; is it a CSV file?") from None
    if not numbered:
        return []
    columns = ["path", "start", "end", "label", "negative"]
    try:
        float(numbered[0][1][1])
    except (ValueError, IndexError):
        columns = [c.strip().lower() for c in numbered[0][1]]
        numbered = numbered[1:]
        if not {"path", "start"} <= set(columns):
            raise QueryError(f"{source}: the header needs at least 'path' and 'start' columns") from None

    def row_of(number: int, row: list[str]) -> LabelRow:
        cells = dict(zip(columns, (unsafe_cell(c.strip()) for c in row)))
        where = f"{source}:{number}"
        if not cells.get("path") or not cells.get("start"):
            raise QueryError(f"{where}: the row needs at least a path and a start time")
        name = label or cells.get("label") or ""
        if not name and need_label:
            raise QueryError(f"{where}: no label; add a 'label' column or give `label`")
        end = cells.get("end")
        return label_row(cells["path"], name, start=_parse_time(cells["start"], "start", where),
                         end=_parse_time(end, "end", where) if end else None, negative=negative, where=where,
                         said_negative=_negative_cell(cells.get("negative", ""), where),
                         channel=_channel_cell(cells.get("channel"), where))

    return every_row(row_of, numbered, source=source)


def parse_audacity(text: str, source: str, *, label: str | None, negative: bool) -> list[LabelRow]:
    """Audacity label track lines ``start<TAB>end<TAB>text`` (frequency lines are skipped); the
    rows' media is None (the track does not say which file it labels).

    A text ending in " (negative)" is a negative label, as ``labels list --format audacity`` writes it;
    a trailing score such as " 0.86", as ``rescore --format audacity`` writes it, is dropped.
    """
    def row_of(number: int, line: str) -> LabelRow | None:
        if not line.strip() or line.startswith(("\\", "\t")):
            return None
        parts = line.split("\t")
        where = f"{source}:{number}"
        start = _number(parts[0], "start", where)
        end = _number(parts[1], "end", where) if len(parts) > 1 else start
        name = parts[2].strip() if len(parts) > 2 else ""
        marked = name.endswith(NEGATIVE_SUFFIX)
        name = label or SCORE_SUFFIX.sub("", name.removesuffix(NEGATIVE_SUFFIX))
        if not name:
            raise QueryError(f"{where}: the label has no text; give `label`")
        return label_row(None, name, start=start, end=end, negative=negative, where=where, said_negative=marked)

    return every_row(row_of, enumerate(text.splitlines(), start=1), source=source)


# What ``labels import`` reads, for its help: every format ``labels list`` writes.
READ_FORMATS = "CSV (path,start,end,label[,negative]; ',' ';' or tab), JSON, NDJSON, a Raven selection table, " \
               "an Audacity label track, or the EDL and markers CSV written for video editors (back at their frames)"


def read_label_file(path: Path, media: str | None = None, *, label: str | None = None,
                    negative: bool = False, rate: FrameRate | None = None) -> list[LabelRow]:
    """The rows of a label file of any kind ``labels list`` writes: CSV, JSON, NDJSON, a Raven
    selection table, an Audacity label track (``media`` says which file a track or a one-file
    table labels), an EDL or a markers CSV (``rate`` gives a file name's frame rate; without it
    every file counts as audio, at 25 fps).  The kind is recognised from the text, not the file name."""
    text = read_text_file(path)
    rate = rate or (lambda name: None)
    if editor_files.looks_like_edl(text):
        return editor_files.parse_edl(text, path.name, rate=rate, media=media, label=label, negative=negative)
    if editor_files.looks_like_markers(text):
        return editor_files.parse_markers(text, path.name, rate=rate, media=media, label=label, negative=negative)
    begins = text.lstrip()[:1]
    if begins in ("[", "{"):
        return parse_json(text, path.name, media=media, label=label, negative=negative)
    if looks_like_raven(text):
        rows = parse_raven(text, path.name, negative=negative)
        if any((row.media or media) is None for row in rows):
            raise QueryError(f"{path.name} is a one-file Raven table: say which file it labels with `media`")
        if not all(label or row.label for row in rows):
            raise QueryError(f"{path.name} has selections without a label: name them with `label`")
        return [row._replace(media=media or row.media, label=label or row.label) for row in rows]
    if media is not None:
        return [row._replace(media=media) for row in parse_audacity(text, path.name, label=label, negative=negative)]
    if looks_like_audacity(text):
        raise QueryError(f"{path.name} looks like an Audacity label track: say which file it labels with `media`")
    return parse_csv(text, path.name, label=label, negative=negative)


def parse_json(text: str, source: str, *, media: str | None, label: str | None, negative: bool) -> list[LabelRow]:
    """Rows of our JSON exports: a JSON list, or NDJSON (one object a line), of labels as ``labels list
    --format json`` writes them (with ``kind`` and ``negative``) or of moments (``path, start, end[, label]``)."""
    items, where = _json_items(text, source)

    def row_of(number: int, item: object) -> LabelRow:
        at = where.format(number)
        if isinstance(item, QueryError):  # a line of NDJSON that is not JSON
            raise item
        if not isinstance(item, dict):
            raise QueryError(f"{at}: not an object with path, start and end")
        path = media or item.get("path")
        name = label or item.get("label")
        if not isinstance(path, str) or not path or not isinstance(name, str) or not name:
            raise QueryError(f"{at}: it needs a path and a label (or give `label`)")
        said = item.get("negative")
        if said is not None and not isinstance(said, bool):
            raise QueryError(f"{at}: 'negative' is {quoted(said)}, not true or false")
        start = _parse_time(str(item.get("start")), "start", at)
        end = None if item.get("kind") == "marker" or item.get("end") is None else \
            _parse_time(str(item["end"]), "end", at)
        return label_row(path, name, start=start, end=end, negative=negative, where=at, said_negative=bool(said),
                         channel=_channel_cell(item.get("channel"), at))

    return every_row(row_of, items, source=source)


def _json_items(text: str, source: str) -> tuple[list[tuple[int, object]], str]:
    """The numbered items of a JSON list, or the numbered lines of NDJSON, and how a row is named in an error (``file:item 3``, ``file:12``)."""
    if text.lstrip().startswith("{"):
        return [(number, _json_line(line, f"{source}:{number}")) for number, line in enumerate(text.splitlines(), start=1)
                if line.strip()], f"{source}:{{}}"
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise QueryError(f"{source} is not valid JSON; export it again or fix it") from None
    if not isinstance(items, list):
        raise QueryError(f"{source} holds no list of labels (a JSON list of objects is expected)")
    return list(enumerate(items, start=1)), f"{source}:item {{}}"


def _json_line(line: str, where: str) -> object:
    """One NDJSON line's value, or the error its row reports (a bad line among good ones is a bad row)."""
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return QueryError(f"{where}: not valid JSON")


def read_moments_file(path: Path) -> list[LabelRow]:
    """The rows of a moments CSV (``path,start,end[,label][,channel]``), as ``export clips`` cuts them; the
    label is optional here, and every row names its file (``parse_csv`` refuses one that does not)."""
    return [row for row in parse_csv(read_text_file(path), path.name, label=None, negative=False,
                                     need_label=False) if row.media]
