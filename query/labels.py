"""Labels: time ranges and point markers on media, positive or negative.

Labels live on media files, not on window ids, so they survive re-windowing, new
models and moved files; a label of a file later deleted is kept and reported.
A media path may be absolute, relative to the current folder or to an indexed root,
or a file name that only one media file has.  Times outside a file are refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from pathlib import Path

from audioscan.indexer.store.annotations import Label
from audioscan.indexer.store.snapshot import MediaInfo
from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader
from audioscan.query.errors import QueryError, QueryNotFoundError, quoted
from audioscan.query import formats
from audioscan.query.formats import safe_cell, unsafe_cell
from audioscan.query.timecode import parse_time

MAX_LABEL_LENGTH = 200
# Slack for times a little past the decoded end (editors round durations up).
_END_SLACK = 0.5
_TRUE = {"1", "true", "yes", "y", "negative", "neg", "no-match"}


Media = MediaInfo  # a media file as the query layer sees it


def all_media(store: StoreReader) -> list[Media]:
    return list(store.media().values())


def resolve_media(store: StoreReader | None, text: str, media: list[Media] | None = None) -> Media:
    """The media file a user means by ``text``, or one sentence saying why there is none."""
    media = media if media is not None else all_media(store)
    by_abs = {m.path: m for m in media}
    given = Path(text).expanduser()
    candidates = [given if given.is_absolute() else Path.cwd() / given]
    candidates += [Path(m.root) / given for m in media] if not given.is_absolute() else []
    for candidate in candidates:
        for form in (str(candidate), str(candidate.resolve()) if candidate.exists() else None):
            if form in by_abs:
                return by_abs[form]
    named = [m for m in media if m.rel == text or m.rel.endswith("/" + text)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise QueryError(f"{quoted(text)} matches {len(named)} indexed files (" + ", ".join(m.rel for m in named[:4])
                         + "); give more of its path")
    raise QueryNotFoundError(f"{quoted(text, 120)} is not an indexed media file; check the path or run 'audioscan index build'")


def resolve_path(text: str, media: list[Media], beside: Path) -> str:
    """The file a row of a file (a moments CSV) names: an indexed media file as :func:`resolve_media`
    finds it, else a file on disk beside that file, else one in the current folder."""
    try:
        return resolve_media(None, text, media).path
    except QueryNotFoundError:
        pass
    given = Path(text).expanduser()
    for candidate in ([given] if given.is_absolute() else [beside / given, Path.cwd() / given]):
        if candidate.is_file():
            return str(candidate.resolve())
    raise QueryNotFoundError(f"{quoted(text, 120)} is neither an indexed media file nor a file beside "
                             f"{quoted(str(beside), 80)} or in the current folder; check the path")


def check_times(media: Media, start: float, end: float, marker: bool) -> None:
    if not (math.isfinite(start) and math.isfinite(end)):
        raise QueryError(f"{start:g}-{end:g} s is not a time range: times must be finite numbers of seconds")
    if media.status != "ok" or media.duration is None:
        raise QueryError(f"{media.rel} is {'gone from disk' if media.status == 'missing' else 'not indexed'} "
                         "(see 'audioscan index status'); labels need an indexed file")
    limit = media.duration + _END_SLACK
    if start < 0 or start > limit or end > limit:
        raise QueryError(f"{start:g}-{end:g} s is outside {media.rel}, which lasts {media.duration:.1f} s; "
                         "check the times (seconds from the start of the file)")
    if not marker and end <= start:
        raise QueryError(f"a range needs its end after its start ({start:g} >= {end:g}); "
                         "for a single moment use `marker`")


# Unicode categories no name may hold: controls (Cc: tabs, line breaks), invisible formatting (Cf:
# zero-width and direction marks), the line and paragraph separators (Zl, Zp: U+2028, U+2029, which
# line-based formats read as line breaks) and lone surrogates (Cs: not text at all, UTF-8 cannot hold them).
_CATEGORY_WORDS = {"Cc": "a control character", "Cf": "an invisible format character", "Zl": "a line separator",
                   "Zp": "a paragraph separator", "Cs": "a lone surrogate"}
REFUSED_CATEGORIES = frozenset(_CATEGORY_WORDS)


def refused_character(text: str) -> str | None:
    """The first character of ``text`` that a name may not hold, described (``U+2028``), or None.

    The one rule for every name that enters (CLI, label files, the page): such a character would
    break a line-based export (Audacity, Raven, EDL) or hide inside a name that looks the same."""
    for char in text:
        category = unicodedata.category(char)
        if category in REFUSED_CATEGORIES:
            return f"U+{ord(char):04X} ({_CATEGORY_WORDS[category]})"
    return None


def check_label_name(name: str) -> None:
    """A label is a name, not a block of text: it travels into Raven, Audacity and EDL files,
    file names and the page, where a line break or tab would forge rows of its own."""
    if not name.strip():
        raise QueryError("a label needs a name (e.g. 'gag')")
    if len(name) > MAX_LABEL_LENGTH:
        raise QueryError(f"a label name may have at most {MAX_LABEL_LENGTH} characters; this one has {len(name)}")
    refused = refused_character(name)
    if refused is not None:
        raise QueryError(f"the label {quoted(name)} holds {refused}, which no export keeps as it is; "
                         "give a name without control characters, format characters or line separators")
    if name.strip().endswith(NEGATIVE_SUFFIX) or _SCORE_SUFFIX.search(name.strip()):
        raise QueryError(f"the label {quoted(name)} ends the way exports mark a negative (' (negative)') or a "
                         "score (' 0.86'), so it would not come back as it is; name it differently")


def add_labels(store: StoreAnnotator, rows: list[tuple[Media, str, float, float | None, bool]], source: str) -> list[int]:
    """Add (media, label, start, end or None for a marker, positive) rows in one transaction;
    a row equal to one already stored is not added again.  Returns the ids of those added."""
    for name in {row[1] for row in rows}:  # a million rows share a handful of names
        check_label_name(name)
    prepared = []
    for media, label, start, end, positive in rows:
        marker = end is None
        end = start if marker else end
        check_times(media, float(start), float(end), marker)
        prepared.append((media.id, label.strip(), float(start), float(end), "marker" if marker else "range", positive))
    return store.add_labels(prepared, source)


def remove_labels(store: StoreAnnotator, ids: list[int]) -> int:
    """Remove labels by id; an id that does not exist is refused (nothing is removed then)."""
    known = {row.id for row in store.labels()}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise QueryNotFoundError(f"no label with id {', '.join(map(str, unknown))}; 'audioscan labels list' shows the ids")
    return len(store.remove_labels(ids))


def conflicts(labels: list[Label]) -> list[tuple[Label, Label]]:
    """Positive and negative labels of one name that overlap on one file (they contradict)."""
    groups: dict[tuple[str, int], list[Label]] = {}
    for item in labels:
        groups.setdefault((item.label, item.media.id), []).append(item)
    return [(pos, neg) for group in groups.values() for pos in group if pos.positive
            for neg in group if not neg.positive and pos.start <= neg.end and neg.start <= pos.end]


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


def parse_raven(text: str, source: str, negative: bool) -> list[tuple[str | None, str, float, float, bool]]:
    """(media path or None, label, start, end, positive) per selection of a Raven table; a label
    ending in " (negative)", as ``labels list --format raven`` writes negatives, is negative."""
    rows = []
    for path, name, start, end in formats.parse_raven(text, source):
        marked = name.endswith(NEGATIVE_SUFFIX)
        rows.append((path, name.removesuffix(NEGATIVE_SUFFIX), start, end, not (negative or marked)))
    return rows


def looks_like_audacity(text: str) -> bool:
    """An Audacity label track: tab-separated lines that start with two numbers."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    parts = first.split("\t")
    try:
        float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return False
    return True


def parse_csv(text: str, source: str, label: str | None, negative: bool,
              need_label: bool = True) -> list[tuple[str, str, float, float | None, bool]]:
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
    try:
        rows = [r for r in reader if r and any(c.strip() for c in r)]
    except csv.Error as err:  # a cell past the csv module's field limit, a NUL byte, a broken quote
        raise QueryError(f"{source} line {reader.line_num}: {err}; is it a CSV file?") from None
    if not rows:
        return []
    columns = ["path", "start", "end", "label", "negative"]
    try:
        float(rows[0][1])
    except (ValueError, IndexError):
        columns = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
        if not {"path", "start"} <= set(columns):
            raise QueryError(f"{source}: the header needs at least 'path' and 'start' columns") from None
    def row_of(number: int, row: list[str]) -> tuple[str, str, float, float | None, bool]:
        cells = dict(zip(columns, (unsafe_cell(c.strip()) for c in row)))
        where = f"{source} line {number}"
        if not cells.get("path") or not cells.get("start"):
            raise QueryError(f"{where}: the row needs at least a path and a start time")
        name = label or cells.get("label") or ""
        if not name and need_label:
            raise QueryError(f"{where}: no label; add a 'label' column or give `label`")
        end = cells.get("end")
        return (cells["path"], name, _parse_time(cells["start"], "start", where),
                _parse_time(end, "end", where) if end else None,
                not (negative or cells.get("negative", "").lower() in _TRUE))

    return _every_row(row_of, enumerate(rows, start=2 if columns[0] == "path" else 1), source)


def _every_row(row_of, numbered, source: str) -> list:
    """``row_of(number, row)`` of every row; the rows that cannot be read are all reported
    together (a file is fixed once, not once per bad line), and then nothing is imported."""
    out, problems = [], []
    for number, row in numbered:
        try:
            parsed = row_of(number, row)
        except QueryError as err:
            problems.append(err.template)
            continue
        if parsed is not None:
            out.append(parsed)
    if len(problems) == 1:
        raise QueryError(problems[0])
    if problems:
        shown = "; ".join(problem.removeprefix(f"{source} ") for problem in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise QueryError(f"{source}: {len(problems)} rows cannot be read, so nothing was imported: {shown}{more}")
    return out


NEGATIVE_SUFFIX = " (negative)"
_SCORE_SUFFIX = re.compile(r"(?<=\S) [01]\.\d\d$")


def parse_audacity(text: str, source: str, label: str | None, negative: bool) -> list[tuple[str, float, float | None, bool]]:
    """Audacity label track lines ``start<TAB>end<TAB>text`` (frequency lines are skipped).

    A text ending in " (negative)" is a negative label, as ``labels list --format audacity`` writes it;
    a trailing score such as " 0.86", as ``rescore --format audacity`` writes it, is dropped.
    """
    def row_of(number: int, line: str) -> tuple[str, float, float | None, bool] | None:
        if not line.strip() or line.startswith(("\\", "\t")):
            return None
        parts = line.split("\t")
        where = f"{source} line {number}"
        start = _number(parts[0], "start", where)
        end = _number(parts[1], "end", where) if len(parts) > 1 else start
        name = parts[2].strip() if len(parts) > 2 else ""
        marked = name.endswith(NEGATIVE_SUFFIX)
        name = label or _SCORE_SUFFIX.sub("", name.removesuffix(NEGATIVE_SUFFIX))
        if not name:
            raise QueryError(f"{where}: the label has no text; give `label`")
        return name, start, None if end == start else end, not (negative or marked)

    return _every_row(row_of, enumerate(text.splitlines(), start=1), source)


def read_label_file(path: Path, media: str | None = None, label: str | None = None,
                    negative: bool = False) -> list[tuple[str, str, float, float | None, bool]]:
    """(media, label, start, end or None, positive) rows of a label file of any kind we read:
    a Raven selection table, an Audacity label track (``media`` says which file it labels),
    or CSV.  The kind is recognised from the text, not the file name."""
    text = read_text_file(path)
    if text.lstrip().startswith("["):
        return parse_json(text, path.name, media, label, negative)
    if looks_like_raven(text):
        rows = []
        for found, name, start, end, positive in parse_raven(text, path.name, negative):
            if (found or media) is None:
                raise QueryError(f"{path.name} is a one-file Raven table: say which file it labels with `media`")
            if not (label or name):
                raise QueryError(f"{path.name} has selections without a label: name them with `label`")
            rows.append((media or found, label or name, start, end, positive))
        return rows
    if media is not None:
        return [(media, *row) for row in parse_audacity(text, path.name, label, negative)]
    if looks_like_audacity(text):
        raise QueryError(f"{path.name} looks like an Audacity label track: say which file it labels with `media`")
    return parse_csv(text, path.name, label, negative)


def parse_json(text: str, source: str, media: str | None, label: str | None,
               negative: bool) -> list[tuple[str, str, float, float | None, bool]]:
    """Rows of our JSON exports: ``labels list --format json`` (with ``kind`` and ``negative``) or a
    list of moments (``path, start, end[, label]``)."""
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):
        raise QueryError(f"{source} is not valid JSON; export it again or fix it") from None
    if not isinstance(items, list):
        raise QueryError(f"{source} holds no list of labels (a JSON list of objects is expected)")

    def row_of(number: int, item) -> tuple[str, str, float, float | None, bool]:
        where = f"{source} item {number}"
        if not isinstance(item, dict):
            raise QueryError(f"{where}: not an object with path, start and end")
        path = media or item.get("path")
        name = label or item.get("label")
        if not isinstance(path, str) or not path or not isinstance(name, str) or not name:
            raise QueryError(f"{where}: it needs a path and a label (or give `label`)")
        start = _parse_time(str(item.get("start")), "start", where)
        end = None if item.get("kind") == "marker" or item.get("end") is None else \
            _parse_time(str(item["end"]), "end", where)
        return path, name.removesuffix(NEGATIVE_SUFFIX), start, end, \
            not (negative or item.get("negative") is True or name.endswith(NEGATIVE_SUFFIX))

    return _every_row(row_of, enumerate(items, start=1), source)


def read_moments_file(path: Path) -> list[tuple[str, str, float, float | None]]:
    """(path, label, start, end or None) rows of a moments CSV (``path,start,end[,label]``),
    as ``export clips`` cuts them; the label is optional here."""
    return [(where, name, start, end)
            for where, name, start, end, _ in parse_csv(read_text_file(path), path.name, None, False,
                                                         need_label=False)]


def to_csv(labels: list[Label]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "start", "end", "label", "negative"])
    for item in labels:
        writer.writerow([safe_cell(item.media.path), f"{item.start:g}",
                         "" if item.kind == "marker" else f"{item.end:g}", safe_cell(item.label),
                         "1" if not item.positive else "0"])
    return buffer.getvalue()
