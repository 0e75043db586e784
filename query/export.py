"""Writing hits and detections where people use them: tables, CSV, JSON, Audacity label tracks."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from audioscan.query.errors import QueryError
from audioscan.query.search import Hit

FORMATS = ("table", "csv", "json", "audacity")


def to_csv(hits: list[Hit], label: str | None = None) -> str:
    """``path,start,end,score[,label]``; ``labels import`` reads it back (e.g. ``--negative``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "start", "end", "score"] + (["label"] if label else []))
    for hit in hits:
        writer.writerow([safe_cell(hit.path), f"{hit.start:.3f}", f"{hit.end:.3f}", f"{hit.score:.4f}"]
                        + ([safe_cell(label)] if label else []))
    return buffer.getvalue()


def to_json(hits: list[Hit]) -> str:
    return json.dumps([hit.as_json() for hit in hits], indent=2, ensure_ascii=False)


def audacity_track(rows: list[tuple[float, float, str]]) -> str:
    """An Audacity label track: ``start<TAB>end<TAB>text`` per line, seconds with 6 decimals."""
    return "".join(f"{start:.6f}\t{end:.6f}\t{text}\n" for start, end, text in sorted(rows))


def write_audacity(rows: list[tuple[str, float, float, str]], out_dir: Path) -> list[Path]:
    """One label track per media file from (path, start, end, text) rows; see :func:`file_names`."""
    by_path: dict[str, list[tuple[float, float, str]]] = {}
    for path, start, end, text in rows:
        by_path.setdefault(path, []).append((start, end, text))
    written = []
    for path, name in file_names(list(by_path), ".txt").items():
        written.append(write_into(out_dir, name, audacity_track(by_path[path])))
    return written


# Characters no file name should hold on any system we run on.
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
_MAX_NAME_BYTES = 200


def _safe(text: str) -> str:
    text = _UNSAFE.sub("_", text).strip(" .") or "_"
    while len(text.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        text = text[:-1]
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
            name = f"{_safe(candidates[-1])[:_MAX_NAME_BYTES - 8]}-{count}{suffix}"
            count += 1
        taken.add(name.lower())
        names[path] = name
    return names


def write_into(out_dir: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``out_dir/name``; ``name`` must be a plain file name (it stays inside)."""
    target = out_dir / name
    if target.parent != out_dir or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a plain file name")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as err:
        raise QueryError(f"cannot write {target} ({err.strerror or err})") from None
    return target


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection): a leading
    ``= + - @``, tab or CR gets a ``'`` in front; :func:`unsafe_cell` takes it off again."""
    return "'" + text if text.startswith(_FORMULA_START) else text


def unsafe_cell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text
