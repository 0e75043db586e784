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
from typing import Callable, Iterable, NamedTuple, Sequence

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


def check_times(media: Media, start: float, end: float, marker: bool,
                marker_hint: str = "for a single moment use `marker`") -> None:
    """One sentence when ``start``-``end`` cannot be a label of ``media``; ``marker_hint`` says how
    the caller's input spells a marker (an option, an empty cell)."""
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
        raise QueryError(f"a range needs its end after its start ({start:g} >= {end:g}); {marker_hint}")


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


class LabelRow(NamedTuple):
    """One label as it enters: from a file's row (``where`` says which: ``labels.csv:12``), the
    CLI or the page.  ``media`` is the path as given until it is resolved to a :class:`Media`;
    ``end`` is None for a point marker."""

    media: "str | Media | None"
    label: str
    start: float
    end: float | None
    positive: bool
    where: str = ""


def prepare_labels(rows: Sequence[LabelRow]) -> list[tuple[int, str, float, float, str, bool]]:
    """The store's (media id, label, start, end, kind, positive) of ``rows`` (media resolved).

    Every row is checked before any is stored; the rows of a file that cannot be labelled are
    reported all together, each as ``file:line: why``, so a file is fixed once."""
    refused = {}
    for name in {row.label for row in rows}:  # a million rows share a handful of names
        try:
            check_label_name(name)
        except QueryError as err:
            refused[name] = err.template
    prepared, problems = [], []
    for row in rows:
        try:
            if row.label in refused:
                raise QueryError(refused[row.label])
            marker = row.end is None
            end = float(row.start) if marker else float(row.end)
            check_times(row.media, float(row.start), end, marker,
                        marker_hint="leave the end empty for a marker" if row.where else "for a single moment use `marker`")
        except QueryError as err:
            problems.append(f"{row.where}: {err.template}" if row.where else err.template)
            continue
        prepared.append((row.media.id, row.label.strip(), float(row.start), end, "marker" if marker else "range",
                         row.positive))
    if problems:
        raise bad_rows(problems)
    return prepared


def add_labels(store: StoreAnnotator, rows: Sequence[LabelRow], source: str) -> list[int]:
    """Add ``rows`` (media resolved) in one transaction once every one is checked; a row equal to one
    already stored is not added again.  Returns the ids of those added."""
    return store.add_labels(prepare_labels(rows), source)


def stored_already(store: StoreReader, prepared: list[tuple[int, str, float, float, str, bool]]) -> int:
    """How many of ``prepared`` rows the store holds already (an import would skip them)."""
    stored = {(item.media.id, item.label, item.start, item.end, item.kind, item.positive) for item in store.labels()}
    return sum(1 for row in dict.fromkeys(prepared) if row in stored)


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


def conflicting_pairs(labels: list[Label], ids: set[int]) -> list[tuple[Label, Label]]:
    """The overlapping positive/negative pairs in which at least one label is one of ``ids`` (those
    one command added: it warns about what it did, not about what was there before)."""
    if not ids:
        return []
    touched = {(item.label, item.media.id) for item in labels if item.id in ids}
    return [(pos, neg) for pos, neg in conflicts([i for i in labels if (i.label, i.media.id) in touched])
            if pos.id in ids or neg.id in ids]


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


def parse_raven(text: str, source: str, negative: bool) -> list[LabelRow]:
    """A row per selection of a Raven table (media None when it names no file); a label ending in
    " (negative)", as ``labels list --format raven`` writes negatives, is negative."""
    def row_of(number: int, found: tuple[str | None, str, float | None, float | None]) -> LabelRow:
        path, name, start, end = found
        if start is None or end is None:
            raise QueryError(f"{source}:{number}: the begin and end times are not numbers")
        return _row(path, name, start, end, negative, f"{source}:{number}")

    return _every_row(row_of, formats.parse_raven(text, source), source)


def looks_like_audacity(text: str) -> bool:
    """An Audacity label track: tab-separated lines that start with two numbers."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    parts = first.split("\t")
    try:
        float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        return False
    return True


def _row(media: str | None, name: str, start: float, end: float | None, negative: bool, where: str,
         said_negative: bool = False) -> LabelRow:
    """The row a file's line describes.  Every reader ends here, so each format spells a marker and
    a negative the same way: an end equal to the start (or none) is a marker, and a name ending in
    " (negative)" - as every export writes a negative - is negative."""
    marked = name.endswith(NEGATIVE_SUFFIX)
    return LabelRow(media=media, label=name.removesuffix(NEGATIVE_SUFFIX), start=start,
                    end=None if end is None or end == start else end,
                    positive=not (negative or said_negative or marked), where=where)


# How a ``negative`` cell may say yes or no; pandas writes a column of 0/1 with gaps as 0.0/1.0.
_NEGATIVE_WORDS = {"true": True, "yes": True, "negative": True, "false": False, "no": False, "positive": False}
_BINARY = re.compile(r"([01])(?:\.0*)?")


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


def parse_csv(text: str, source: str, label: str | None, negative: bool,
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
        return _row(cells["path"], name, _parse_time(cells["start"], "start", where),
                    _parse_time(end, "end", where) if end else None, negative, where,
                    said_negative=_negative_cell(cells.get("negative", ""), where))

    return _every_row(row_of, numbered, source)


# A failed import names this many bad rows, then how many more there are.
SHOWN_PROBLEMS = 10


def bad_rows(problems: list[str]) -> QueryError:
    """One sentence for the rows of a file that cannot be imported: each as ``file:line: why``,
    the first :data:`SHOWN_PROBLEMS`, then how many more."""
    if len(problems) == 1:
        return QueryError(f"{problems[0]}; nothing was imported")
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return QueryError(f"{len(problems)} rows cannot be imported, so nothing was: {shown}{more}")


def _every_row(row_of: Callable, numbered: Iterable[tuple[int, object]], source: str) -> list[LabelRow]:
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
    if problems:
        raise bad_rows(problems)
    return out


NEGATIVE_SUFFIX = " (negative)"
_SCORE_SUFFIX = re.compile(r"(?<=\S) [01]\.\d\d$")


def parse_audacity(text: str, source: str, label: str | None, negative: bool) -> list[LabelRow]:
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
        name = label or _SCORE_SUFFIX.sub("", name.removesuffix(NEGATIVE_SUFFIX))
        if not name:
            raise QueryError(f"{where}: the label has no text; give `label`")
        return _row(None, name, start, end, negative, where, said_negative=marked)

    return _every_row(row_of, enumerate(text.splitlines(), start=1), source)


# What ``labels import`` reads, for its help: every format ``labels list`` writes but the ones for video
# editors (``formats.EDITOR_FORMATS``), whose times are frames and whose files are names only.
READ_FORMATS = "CSV (path,start,end,label[,negative]; ',' ';' or tab), JSON, NDJSON, a Raven selection table, " \
               "or an Audacity label track"


def read_label_file(path: Path, media: str | None = None, label: str | None = None,
                    negative: bool = False) -> list[LabelRow]:
    """The rows of a label file of any kind ``labels list`` writes: CSV, JSON, NDJSON, a Raven
    selection table or an Audacity label track (``media`` says which file a track or a one-file
    table labels).  The kind is recognised from the text, not the file name."""
    text = read_text_file(path)
    begins = text.lstrip()[:1]
    if begins in ("[", "{"):
        return parse_json(text, path.name, media, label, negative)
    if looks_like_raven(text):
        rows = parse_raven(text, path.name, negative)
        if any((row.media or media) is None for row in rows):
            raise QueryError(f"{path.name} is a one-file Raven table: say which file it labels with `media`")
        if not all(label or row.label for row in rows):
            raise QueryError(f"{path.name} has selections without a label: name them with `label`")
        return [row._replace(media=media or row.media, label=label or row.label) for row in rows]
    if media is not None:
        return [row._replace(media=media) for row in parse_audacity(text, path.name, label, negative)]
    if looks_like_audacity(text):
        raise QueryError(f"{path.name} looks like an Audacity label track: say which file it labels with `media`")
    return parse_csv(text, path.name, label, negative)


def parse_json(text: str, source: str, media: str | None, label: str | None, negative: bool) -> list[LabelRow]:
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
        return _row(path, name, start, end, negative, at, said_negative=bool(said))

    return _every_row(row_of, items, source)


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


def read_moments_file(path: Path) -> list[tuple[str, str, float, float | None]]:
    """(path, label, start, end or None) rows of a moments CSV (``path,start,end[,label]``),
    as ``export clips`` cuts them; the label is optional here."""
    return [(row.media, row.label, row.start, row.end)
            for row in parse_csv(read_text_file(path), path.name, None, False, need_label=False)]


def to_csv(labels: list[Label]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "start", "end", "label", "negative"])
    for item in labels:
        writer.writerow([safe_cell(item.media.path), repr(float(item.start)),  # every digit: it must read back
                         "" if item.kind == "marker" else repr(float(item.end)), safe_cell(item.label),
                         "1" if not item.positive else "0"])
    return buffer.getvalue()
