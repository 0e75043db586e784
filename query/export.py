"""Writing moments where people use them: one combined file, or one file per media file.

Names of written files are readable, distinct (``clip.wav`` and ``clip.mp3`` get two),
never carry a path separator or overflow a file system's name limit, and always land
inside the folder asked for.
"""

from __future__ import annotations

import re
from pathlib import Path

from audioscan.query.errors import QueryError
from audioscan.query.formats import render
from audioscan.query.moments import Moment

# Formats written one file per media file (they describe a single file) unless --out is given.
PER_FILE_FORMATS = ("audacity",)
SUFFIXES = {"csv": ".csv", "json": ".json", "ndjson": ".ndjson", "raven": ".txt", "edl": ".edl",
            "markers": ".csv", "audacity": ".txt"}
# Characters no file name should hold on any system we run on.
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
_MAX_NAME_BYTES = 200


def write_moments(moments: list[Moment], fmt: str, *, out: Path | None = None, out_dir: Path | None = None,
                  use_timecode: bool = False) -> list[Path] | str:
    """Write ``moments``: to ``out`` (one file), into ``out_dir`` (one file per media file), or
    return the text for stdout.  Returns the written paths, or the text."""
    if out_dir is not None:
        by_path: dict[str, list[Moment]] = {}
        for moment in moments:
            by_path.setdefault(moment.path, []).append(moment)
        names = file_names(list(by_path), SUFFIXES[fmt])
        return [write_into(out_dir, names[path], render(fmt, items, use_timecode, combined=False))
                for path, items in by_path.items()]
    if fmt in PER_FILE_FORMATS and len({m.path for m in moments}) > 1 and out is None:
        raise QueryError(f"`format` {fmt} describes one media file: give `out_dir` for one file per media file",
                         value=fmt)
    text = render(fmt, moments, use_timecode, combined=True)
    if out is None:
        return text
    return [write_file(out, text)]


def write_audacity(rows: list[tuple[str, float, float, str]], out_dir: Path) -> list[Path]:
    """One Audacity label track per media file from (path, start, end, text) rows."""
    return write_moments([Moment(path, start, end, None, text) for path, start, end, text in rows], "audacity",
                         out_dir=out_dir)


def _safe(text: str, limit: int = _MAX_NAME_BYTES) -> str:
    """``text`` as a file name: no separators or control characters, at most ``limit`` bytes
    of UTF-8 (whole characters only), in one pass whatever its length."""
    text = _UNSAFE.sub("_", text).strip(" .") or "_"
    budget = limit
    for end, char in enumerate(text):
        budget -= len(char.encode("utf-8", "surrogateescape"))
        if budget < 0:
            return text[:end] or "_"
    return text


def file_names(paths: list[str], suffix: str) -> dict[str, str]:
    """A distinct, readable file name per media path: ``<stem><suffix>``, then with the media
    extension (``clip.wav`` and ``clip.mp3``), then with its folder, then a counter; never a path
    separator, never longer than a file system allows."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    stems = [Path(p).stem for p in paths]
    for path in paths:
        given = Path(path)
        candidates = [given.stem] if stems.count(given.stem) == 1 else []
        candidates += [given.name, "__".join(given.parts[-2:])]
        for candidate in candidates:
            name = _safe(candidate) + suffix
            if name.lower() not in taken:
                break
        count = 2
        while name.lower() in taken:
            name = f"{_safe(candidates[-1], _MAX_NAME_BYTES - 8)}-{count}{suffix}"
            count += 1
        taken.add(name.lower())
        names[path] = name
    return names


def unique_name(name: str, taken: set[str]) -> str:
    """``name`` made safe and distinct from ``taken`` (compared case-insensitively)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, count = _safe(stem) + suffix, 2
    while candidate.lower() in taken:
        candidate = f"{_safe(stem, _MAX_NAME_BYTES - 8)}-{count}{suffix}"
        count += 1
    taken.add(candidate.lower())
    return candidate


def write_into(out_dir: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``out_dir/name``; ``name`` must be a plain file name (it stays inside)."""
    target = out_dir / name
    if target.parent != out_dir or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QueryError(f"cannot create the folder {out_dir} ({err.strerror or err})") from None
    return write_file(target, text)


def write_file(path: Path, text: str) -> Path:
    if not path.parent.is_dir():
        raise QueryError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise QueryError(f"cannot write {path} ({err.strerror or err})") from None
    return path
