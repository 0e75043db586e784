"""Labels: time ranges and point markers on media, positive or negative.

Labels live on media files, not on window ids, so they survive re-windowing, new
models and moved files; a label of a file later deleted is kept and reported.
A media path may be absolute, relative to the current folder or to an indexed root,
or a file name that only one media file has.  Times outside a file are refused.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import numpy as np

from audioscan.indexer.store.annotations import Label
from audioscan.indexer.store.records import MIX_CHANNEL, NewLabel
from audioscan.indexer.store.snapshot import MediaInfo
from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader
from audioscan.query.errors import QueryError, QueryNotFoundError, quoted
from audioscan.query.formats import safe_cell
from audioscan.query.moments import NEGATIVE_SUFFIX

MAX_LABEL_LENGTH = 200
# Slack for times a little past the decoded end (editors round durations up).
_END_SLACK = 0.5


Media = MediaInfo  # a media file as the query layer sees it


def all_media(store: StoreReader) -> list[Media]:
    return list(store.media().values())


def resolve_media(store: StoreReader | None, text: str, *, media: list[Media] | None = None) -> Media:
    """The media file a user means by ``text``, or one sentence saying why there is none."""
    if media is None:
        media = all_media(store) if store is not None else []  # no store and no list: no file is known
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


def resolve_path(text: str, media: list[Media], *, beside: Path) -> str:
    """The file a row of a file (a moments CSV) names: an indexed media file as :func:`resolve_media`
    finds it, else a file on disk beside that file, else one in the current folder."""
    try:
        return resolve_media(None, text, media=media).path
    except QueryNotFoundError:
        pass
    given = Path(text).expanduser()
    for candidate in ([given] if given.is_absolute() else [beside / given, Path.cwd() / given]):
        if candidate.is_file():
            return str(candidate.resolve())
    raise QueryNotFoundError(f"{quoted(text, 120)} is neither an indexed media file nor a file beside "
                             f"{quoted(str(beside), 80)} or in the current folder; check the path")


def check_times(media: Media, start: float, *, end: float, marker: bool,
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
    if name.strip().endswith(NEGATIVE_SUFFIX) or SCORE_SUFFIX.search(name.strip()):
        raise QueryError(f"the label {quoted(name)} ends the way exports mark a negative (' (negative)') or a "
                         "score (' 0.86'), so it would not come back as it is; name it differently")


SCORE_SUFFIX = re.compile(r"(?<=\S) [01]\.\d\d$")


SHOWN_PROBLEMS = 10


def bad_rows(problems: list[str]) -> QueryError:
    """One sentence for the rows of a file that cannot be imported: each as ``file:line: why``,
    the first :data:`SHOWN_PROBLEMS`, then how many more."""
    if len(problems) == 1:
        return QueryError(f"{problems[0]}; nothing was imported")
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    return QueryError(f"{len(problems)} rows cannot be imported, so nothing was: {shown}{more}")


class LabelRow(NamedTuple):
    """One label as it enters: from a file's row (``where`` says which: ``labels.csv:12``), the
    CLI or the page.  ``media`` is the path as given (None: the file's rows name none, and the
    reader was given one); ``end`` is None for a point marker."""

    media: str | None
    label: str
    start: float
    end: float | None
    positive: bool
    where: str = ""
    channel: int = MIX_CHANNEL  # 0: the whole file; else the one channel (from 1) it marks


class PlacedLabel(NamedTuple):
    """A label row and the indexed file its path was found to name."""

    media: Media
    row: LabelRow


def label_row(media: str | None, name: str, *, start: float, end: float | None, negative: bool, where: str,
              said_negative: bool = False, channel: int = MIX_CHANNEL) -> LabelRow:
    """The row a file's line describes.  Every reader ends here, so each format spells a marker and
    a negative the same way: an end equal to the start (or none) is a marker, and a name ending in
    " (negative)" - as every export writes a negative - is negative."""
    marked = name.endswith(NEGATIVE_SUFFIX)
    return LabelRow(media=media, label=name.removesuffix(NEGATIVE_SUFFIX), start=start,
                    end=None if end is None or end == start else end,
                    positive=not (negative or said_negative or marked), where=where, channel=channel)


def every_row(row_of: Callable, numbered: Iterable[tuple[int, object]], *, source: str) -> list[LabelRow]:
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


def prepare_labels(placed: Sequence[PlacedLabel]) -> list[NewLabel]:
    """The labels the ``placed`` rows are, as the store takes them.

    Every row is checked before any is stored; the rows of a file that cannot be labelled are
    reported all together, each as ``file:line: why``, so a file is fixed once."""
    refused = {}
    for name in {row.label for _, row in placed}:  # a million rows share a handful of names
        try:
            check_label_name(name)
        except QueryError as err:
            refused[name] = err.template
    prepared, problems = [], []
    for media, row in placed:
        try:
            if row.label in refused:
                raise QueryError(refused[row.label])
            end = float(row.start) if row.end is None else float(row.end)
            marker = row.end is None
            check_times(media, float(row.start), end=end, marker=marker,
                        marker_hint="leave the end empty for a marker" if row.where else "for a single moment use `marker`")
        except QueryError as err:
            problems.append(f"{row.where}: {err.template}" if row.where else err.template)
            continue
        prepared.append(NewLabel(media_id=media.id, label=row.label.strip(), start=float(row.start), end=end,
                                 kind="marker" if marker else "range", positive=row.positive, channel=row.channel))
    if problems:
        raise bad_rows(problems)
    return prepared


def add_labels(store: StoreAnnotator, placed: Sequence[PlacedLabel], *, source: str) -> list[int]:
    """Add the ``placed`` rows in one transaction once every one is checked; a row equal to one
    already stored is not added again.  Returns the ids of those added."""
    return store.add_labels(prepare_labels(placed), source)


def stored_already(store: StoreReader, prepared: list[NewLabel]) -> int:
    """How many of ``prepared`` labels the store holds already (an import would skip them)."""
    stored = {NewLabel(media_id=item.media.id, label=item.label, start=item.start, end=item.end, kind=item.kind,
                       positive=item.positive, channel=item.channel) for item in store.labels()}
    return sum(1 for row in dict.fromkeys(prepared) if row in stored)


def remove_labels(store: StoreAnnotator, ids: list[int]) -> int:
    """Remove labels by id; an id that does not exist is refused (nothing is removed then)."""
    known = {row.id for row in store.labels()}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise QueryNotFoundError(f"no label with id {', '.join(map(str, unknown))}; 'audioscan labels list' shows the ids")
    return len(store.remove_labels(ids))


def conflicts(labels: list[Label]) -> list[tuple[Label, Label]]:
    """Positive and negative labels of one name that overlap on one file and a channel both mark (they
    contradict; a label of the whole file marks every channel)."""
    groups: dict[tuple[str, int], list[Label]] = {}
    for item in labels:
        groups.setdefault((item.label, item.media.id), []).append(item)
    return [(pos, neg) for group in groups.values() for pos in group if pos.positive
            for neg in group if not neg.positive and pos.start <= neg.end and neg.start <= pos.end
            and same_channel(pos.channel, neg.channel)]


def same_channel(one: int, other: int) -> bool:
    """Whether labels (or a label and a window) of these channels mark the same sound: the same channel,
    or either is the whole file (0: a label of the whole file, a window of the mix)."""
    return one == other or MIX_CHANNEL in (one, other)


def marked_channels(label_channel: int, channels: np.ndarray) -> np.ndarray:
    """Which of windows of these ``channels`` a label of ``label_channel`` marks (:func:`same_channel`)."""
    if label_channel == MIX_CHANNEL:
        return np.ones(len(channels), dtype=bool)
    return (channels == label_channel) | (channels == MIX_CHANNEL)


def conflicting_pairs(labels: list[Label], ids: set[int]) -> list[tuple[Label, Label]]:
    """The overlapping positive/negative pairs in which at least one label is one of ``ids`` (those
    one command added: it warns about what it did, not about what was there before)."""
    if not ids:
        return []
    touched = {(item.label, item.media.id) for item in labels if item.id in ids}
    return [(pos, neg) for pos, neg in conflicts([i for i in labels if (i.label, i.media.id) in touched])
            if pos.id in ids or neg.id in ids]


def to_csv(labels: list[Label]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "start", "end", "label", "negative", "datetime", "site", "channel"])
    for item in labels:
        writer.writerow([safe_cell(item.media.path), repr(float(item.start)),  # every digit: it must read back
                         "" if item.kind == "marker" else repr(float(item.end)), safe_cell(item.label),
                         "1" if not item.positive else "0", item.clock() or "", safe_cell(item.media.site or ""),
                         str(item.channel)])
    return buffer.getvalue()
