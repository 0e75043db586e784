"""Moments in the layouts other programs read, each written to the letter of its format.

Where a format has a place for it, a moment's ``peak`` (where its sound is) goes with it.

* ``csv`` / ``json`` / ``ndjson``: ``path,start,end,score,label,peak,onset,offset,decision,datetime,site,channel``
  (seconds, or timecodes with ``timecode=True``; ``datetime`` is the start's clock time in ISO 8601,
  empty where the recording's start is not known; ``site`` its file's site, if any; ``channel`` the channel
  heard, from 1, in a set indexed with ``--channels split``, 0 for the mono mix); CSV cells are neutralised
  against spreadsheet formulas.  ``labels import`` reads the first five and ``channel`` back.
* ``audacity``: an Audacity label track, ``start<TAB>end<TAB>text`` in seconds, one per file
  (the format has no place for a peak).
* ``raven``: a Raven Pro selection table (tab-separated; ``Selection``, ``View``,
  ``Channel`` (from 1, as Raven counts; the mono mix, which Raven has no number for, is 1),
  ``Begin Time (s)``, ``End Time (s)``, ``Low Freq (Hz)``, ``High Freq (Hz)``,
  ``Peak Time (s)`` as Raven's own measurement column; ``Begin Date Time``
  (``YYYY/MM/DD HH:MM:SS.sss``) and ``Begin Clock Time`` (``HH:MM:SS.sss``), the recorder's clock time
  of the begin as Raven's real-clock-time measurements give it, empty where the start is not known;
  then ours: ``Label``, ``Score``); the combined table adds ``Begin Path``, ``Begin File`` and
  ``File Offset (s)``, as Raven writes for a multi-file selection table.
* ``edl``: a CMX 3600 edit decision list (``TITLE:``, ``FCM: NON-DROP FRAME``, one cut
  event per moment: source in/out at the file's timecode, record timecodes running from
  01:00:00:00, ``* FROM CLIP NAME:`` and ``* COMMENT:`` notes with the score and the peak's
  source timecode, and the channel of a split set's moment), at each file's frame rate.
* ``markers``: a markers CSV for video editors (``Marker Name``, ``Description``, ``In``,
  ``Out``, ``Duration``, ``Marker Type``, ``File``), timecodes at the file's frame rate; the
  description holds the score, the peak's timecode and the channel of a split set's moment.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from audioscan.query.errors import QueryError, quoted
from audioscan.query.moments import Moment
from audioscan.query.timecode import nominal_fps, timecode, to_frames

TEXT_FORMATS = ("csv", "json", "ndjson", "raven", "edl", "markers", "audacity")
# The formats whose times ``timecode`` changes: raven and audacity hold seconds by definition, and
# edl and markers always hold timecodes.
TIMECODE_FORMATS = ("csv", "json", "ndjson")
# The formats for video editors: times in whole frames and files by name (read back at frame precision).
EDITOR_FORMATS = ("edl", "markers")
RAVEN_COLUMNS = ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)",
                 "Peak Time (s)", "Begin Date Time", "Begin Clock Time"]
CSV_COLUMNS = ["path", "start", "end", "score", "label", "peak", "onset", "offset", "decision", "datetime", "site",
               "channel"]
# Selections span the whole band unless we know better: 0 Hz to the Nyquist of the analysis rate.
RAVEN_HIGH_HZ = 8000.0
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A plain decimal number, as our writers and spreadsheets write them: a spreadsheet reads it as a
# number, never as a formula, so it needs no guard.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading
    ``= + - @``, tab or CR gets a ``'`` in front - and so does a leading ``'``, so that
    :func:`unsafe_cell` gives back exactly the text that was written.  A plain number
    (``-0.5359``) is left as it is: it is no formula, and a guard would turn it into text."""
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    return "'" + text if text.startswith((*_FORMULA_START, "'")) else text


def unsafe_cell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith((*_FORMULA_START, "'")) else text


def render(fmt: str, moments: list[Moment], *, use_timecode: bool = False, combined: bool = True) -> str:
    """The text of ``moments`` in ``fmt`` (``combined``: one file for several media files)."""
    if fmt == "csv":
        return to_csv(moments, use_timecode)
    if fmt == "json":
        return json.dumps([m.as_json(use_timecode) for m in moments], indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    if fmt == "ndjson":
        return "".join(json.dumps(m.as_json(use_timecode), ensure_ascii=False, allow_nan=False) + "\n"
                       for m in moments)
    if fmt == "raven":
        return to_raven(moments, combined)
    if fmt == "edl":
        return to_edl(moments)
    if fmt == "markers":
        return to_markers(moments)
    if fmt == "audacity":
        return audacity_track([(m.start, m.end, _audacity_text(m)) for m in moments])
    raise QueryError(f"unknown format {quoted(fmt)}; use one of {', '.join(TEXT_FORMATS)}")


def to_csv(moments: list[Moment], use_timecode: bool = False) -> str:
    """``CSV_COLUMNS``; ``labels import`` reads it back (e.g. with ``--negative``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)

    def time(m: Moment, seconds: float | None) -> str:
        if seconds is None:
            return ""
        return timecode(seconds, m.fps) if use_timecode else f"{seconds:.3f}"

    for m in moments:
        writer.writerow([safe_cell(m.path), time(m, m.start), time(m, m.end), _number(m.score),
                         safe_cell(m.marked_label), time(m, m.peak), time(m, m.onset), time(m, m.offset),
                         _number(m.decision), m.iso_start() or "", safe_cell(m.site or ""), str(m.channel)])
    return buffer.getvalue()


def table_csv(columns: list[str], rows: list[list[str | None]]) -> str:
    """Any table as CSV, every text cell guarded against spreadsheet formulas (None: an empty cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if cell is None else safe_cell(str(cell)) for cell in row] for row in rows])
    return buffer.getvalue()


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _audacity_text(moment: Moment) -> str:
    label = one_line(moment.marked_label)
    return f"{label or 'match'} {moment.score:.2f}" if moment.score is not None else label


def audacity_track(rows: list[tuple[float, float, str]]) -> str:
    """An Audacity label track: ``start<TAB>end<TAB>text`` per line, seconds with 6 decimals."""
    return "".join(f"{start:.6f}\t{end:.6f}\t{text}\n" for start, end, text in sorted(rows))


def to_raven(moments: list[Moment], combined: bool) -> str:
    columns = RAVEN_COLUMNS + (["Begin Path", "Begin File", "File Offset (s)"] if combined else []) + ["Label", "Score"]
    lines = ["\t".join(columns)]
    for number, m in enumerate(sorted(moments, key=lambda m: (m.path, m.start, m.channel)), start=1):
        clock = m.clock()
        row = [str(number), "Spectrogram 1", str(raven_channel(m.channel)), f"{m.start:.6f}", f"{m.end:.6f}", "0.0",
               f"{RAVEN_HIGH_HZ:.1f}",
               "" if m.peak is None else f"{m.peak:.6f}",
               "" if clock is None else f"{clock:%Y/%m/%d %H:%M:%S}.{clock.microsecond // 1000:03d}",
               "" if clock is None else f"{clock:%H:%M:%S}.{clock.microsecond // 1000:03d}"]
        if combined:
            row += [one_line(m.path), one_line(Path(m.path).name), f"{m.start:.6f}"]
        row += [one_line(m.marked_label), "" if m.score is None else f"{m.score:.4f}"]
        lines.append("\t".join(row))
    return "\n".join(lines) + "\n"


def raven_channel(channel: int) -> int:
    """Raven's ``Channel`` of a moment: its channel, counted from 1 as Raven counts; the mono mix (0),
    which Raven has no number for, is written as channel 1, the one channel of a mono file."""
    return max(1, channel)


def one_line(text: str) -> str:
    """``text`` as one cell of a line-based format: every control character (tab, CR, LF...) becomes
    a space, so a label or a file name can never start a row, a column or an EDL note of its own."""
    return _CONTROL.sub(" ", text)


def parse_raven(text: str, source: str) -> list[tuple[int, tuple[str | None, str, float | None, float | None, str]]]:
    """(line number, (media path or None, label, begin, end, channel)) of each selection of a Raven table;
    begin and end are None where they are not numbers, for the caller to report with the other bad rows;
    channel is the ``Channel`` cell as written (empty where the table has none).

    The label is our ``Label`` column, else Raven's common annotation columns
    (``Annotation``, ``Species``, ``Class``), else empty; the path comes from ``Begin Path``
    or ``Begin File`` when the table names files.
    """
    lines = [(number, line) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    header = lines[0][1].split("\t")
    if "Begin Time (s)" not in header or "End Time (s)" not in header:
        raise QueryError(f"{source} is not a Raven selection table (no 'Begin Time (s)' column)")
    where = {name: i for i, name in enumerate(header)}
    label_column = next((c for c in ("Label", "Annotation", "Species", "Class") if c in where), None)
    out = []
    for number, line in lines[1:]:
        cells = line.split("\t")
        cells += [""] * (len(header) - len(cells))  # a short row (an editor dropped empty cells) reads as empty
        if "View" in where and cells[where["View"]].startswith("Waveform"):
            continue  # Raven lists each selection once per view; the spectrogram row is enough
        path = None
        for column in ("Begin Path", "Begin File"):
            if column in where and cells[where[column]].strip():
                path = cells[where[column]].strip()
                break
        label = cells[where[label_column]].strip() if label_column else ""
        channel = cells[where["Channel"]].strip() if "Channel" in where else ""
        out.append((number, (path, label, *_raven_span(cells, where), channel)))
    return out


def _raven_span(cells: list[str], where: dict[str, int]) -> tuple[float | None, float | None]:
    """A selection's begin and end in its file: ``File Offset (s)`` when a multi-file table gives it
    (Raven's times then run across the files), else its own times; (None, None) if not numbers.
    The end is read as written whenever the offset equals the begin time, as in our tables, so no
    rounding of ``offset + length`` moves it (a marker's end stays its start)."""
    try:
        begin_time, end_time = float(cells[where["Begin Time (s)"]]), float(cells[where["End Time (s)"]])
        offset = float(cells[where["File Offset (s)"]]) if "File Offset (s)" in where else begin_time
    except ValueError:
        return None, None
    return offset, end_time if offset == begin_time else offset + end_time - begin_time


def to_edl(moments: list[Moment], title: str = "audioscan") -> str:
    """A CMX 3600 EDL: one cut event per moment, record timecodes laid end to end from 01:00:00:00.

    CMX 3600 gives a whole list one frame rate, so every timecode here - source and record - is
    counted and printed at one rate: the one most of the list's videos have (25 when it holds
    only audio).  Mixing rates per event made record times run backwards.
    """
    rates = [m.fps for m in moments if m.fps]
    fps = max(rates, key=rates.count) if rates else None
    lines = [f"TITLE: {one_line(title)[:70]}", "FCM: NON-DROP FRAME", ""]
    record = 3600 * nominal_fps(fps)  # 01:00:00:00 in frames
    for number, m in enumerate(moments, start=1):
        length = max(1, to_frames(m.end, fps) - to_frames(m.start, fps))
        lines.append(f"{number:03d}  AX       AA/V  C        {timecode(m.start, fps)} {timecode(m.end, fps)} "
                     f"{timecode(0, fps, offset_frames=record)} {timecode(0, fps, offset_frames=record + length)}")
        lines.append(f"* FROM CLIP NAME: {one_line(Path(m.path).name)}")
        note = " ".join(part for part in (one_line(m.marked_label), _score_and_peak(m, fps)) if part)
        if note:
            lines.append(f"* COMMENT: {note}")
        lines.append("")
        record += length
    return "\n".join(lines)


def _score_and_peak(m: Moment, fps: float | None) -> str:
    """``score 0.91 peak 00:01:02:03 channel 2`` (what is known of them; the channel of a split set's
    moment only), for a format's free-text note."""
    parts = [] if m.score is None else [f"score {m.score:.2f}"]
    parts += [] if m.peak is None else [f"peak {timecode(m.peak, fps)}"]
    return " ".join(parts + ([f"channel {m.channel}"] if m.channel else []))


def to_markers(moments: list[Moment]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Marker Name", "Description", "In", "Out", "Duration", "Marker Type", "File"])
    for m in moments:
        description = _score_and_peak(m, m.fps)
        writer.writerow([safe_cell(m.marked_label or "match"), description, timecode(m.start, m.fps),
                         timecode(m.end, m.fps), timecode(m.end - m.start, m.fps), "Comment",
                         safe_cell(Path(m.path).name)])
    return buffer.getvalue()


def csv_rows(text: str, source: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every non-blank row of a CSV a person wrote (``,``, ``;`` or tab, as its
    first line uses most), each cell stripped and read back from its formula guard."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first.count(";") > first.count(",") else "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    numbered = []
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                numbered.append((reader.line_num, [unsafe_cell(cell.strip()) for cell in row]))
    except csv.Error as err:
        raise QueryError(f"{source}:{reader.line_num}: {err}; is it a CSV file?") from None
    return numbered
