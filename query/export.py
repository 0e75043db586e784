"""Writing moments where people use them: one combined file, or one file per media file.

Names of written files are readable, distinct (``clip.wav`` and ``clip.mp3`` get two),
never carry a path separator or overflow a file system's name limit, and always land
inside the folder asked for.

A folder may already hold files of the same names, and they may be the user's own (a Raven
table they edited has the same header as ours).  So a folder written into keeps a record,
:data:`OWNED_RECORD`, of what this program wrote there, by content hash: a file is replaced only
while it is still exactly what we wrote, or when the user says ``overwrite``.  Every file is
checked before the first is written, so a refusal leaves the folder as it was.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from pathlib import Path

from audioscan.query.errors import QueryError
from audioscan.query.formats import TIMECODE_FORMATS, render
from audioscan.query.moments import Moment

# Formats written one file per media file (they describe a single file) unless --out is given.
PER_FILE_FORMATS = ("audacity",)
SUFFIXES = {"csv": ".csv", "json": ".json", "ndjson": ".ndjson", "raven": ".txt", "edl": ".edl",
            "markers": ".csv", "audacity": ".txt"}
# Characters no file name should hold on any system we run on.
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]')
_MAX_NAME_BYTES = 200
OWNED_RECORD = ".audioscan-exports.json"


def moments_text(moments: list[Moment], fmt: str, *, use_timecode: bool = False) -> str:
    """``moments`` as one text in ``fmt`` (for stdout or a download)."""
    check_destination(fmt, moments, out_dir=None, use_timecode=use_timecode)
    return render(fmt, moments, use_timecode=use_timecode, combined=True)


def write_moments(moments: list[Moment], fmt: str, *, out: Path | None = None, out_dir: Path | None = None,
                  use_timecode: bool = False, overwrite: bool = False) -> list[Path]:
    """Write ``moments`` to ``out`` (one file) or into ``out_dir`` (one file per media file, never
    over a file we did not write unless ``overwrite``); returns the written paths."""
    check_destination(fmt, moments, out_dir=out_dir, use_timecode=use_timecode)
    if out_dir is not None:
        by_path: dict[str, list[Moment]] = {}
        for moment in moments:
            by_path.setdefault(moment.path, []).append(moment)
        names = file_names(list(by_path), SUFFIXES[fmt])
        return write_owned(out_dir, {names[path]: render(fmt, items, use_timecode=use_timecode, combined=False)
                                     for path, items in by_path.items()}, overwrite=overwrite)
    if out is None:
        raise ValueError("write_moments writes to `out` or `out_dir`; moments_text gives the text")
    return [write_file(out, render(fmt, moments, use_timecode=use_timecode, combined=True))]


def check_destination(fmt: str, moments: list[Moment], *, out_dir: Path | None, use_timecode: bool) -> None:
    """Refuse, in one sentence, what ``fmt`` cannot honour, rather than write something else: times as
    timecodes where the format fixes its times, the moments of several media files in one file of
    a format that describes a single file (an Audacity track has no paths), or of several channels of
    one file in such a format (an Audacity label track has no channel)."""
    paths = {m.path for m in moments}
    if use_timecode and fmt not in TIMECODE_FORMATS:
        raise QueryError(f"`timecode` changes the times of {', '.join(TIMECODE_FORMATS)} and the table; {fmt} "
                         f"{'always holds timecodes' if fmt in ('edl', 'markers') else 'holds seconds by definition'}",
                         value=fmt)
    if fmt in PER_FILE_FORMATS and len(paths) > 1 and out_dir is None:
        raise QueryError(f"`format` {fmt} describes one media file and these moments come from {len(paths)}: give "
                         "`out_dir` for one file per media file", value=fmt)
    if fmt in PER_FILE_FORMATS:
        for path in paths:
            heard = sorted({m.channel for m in moments if m.path == path})
            if len(heard) > 1:
                raise QueryError(f"`format` {fmt} has no place for a channel, and these moments of {Path(path).name} "
                                 f"are on channels {', '.join(map(str, heard))}: keep one with `channel`, or write "
                                 "raven or csv, which name each moment's channel", value=fmt)


def write_audacity(rows: list[tuple[str, float, float, str]], out_dir: Path) -> list[Path]:
    """One Audacity label track per media file from (path, start, end, text) rows."""
    return write_moments([Moment(path, start, end=end, score=None, label=text) for path, start, end, text in rows],
                         "audacity",
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


def unique_name(stem: str, suffix: str, *, taken: set[str]) -> str:
    """``stem`` made safe, with ``suffix``, distinct from ``taken`` (compared case-insensitively).

    The stem comes in whole, never parsed as a path: it is made of a user's text (a label such as
    ``dog/bark`` or ``<b>bold</b>``), whose separators are characters to replace, not folders."""
    candidate, count = _safe(stem) + suffix, 2
    while candidate.lower() in taken:
        candidate = f"{_safe(stem, _MAX_NAME_BYTES - 8)}-{count}{suffix}"
        count += 1
    taken.add(candidate.lower())
    return candidate


def write_owned(out_dir: Path, files: dict[str, str], *, overwrite: bool = False) -> list[Path]:
    """Write each ``name: text`` into ``out_dir`` (plain names, they stay inside), refusing - before
    writing anything - a file there that we did not write or that changed since (see the module)."""
    for name in files:
        if (out_dir / name).parent != out_dir or name in ("", ".", "..", OWNED_RECORD):
            raise ValueError(f"{name!r} is not a plain file name")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QueryError(f"cannot create the folder {out_dir} ({err.strerror or err})") from None
    owned = _owned(out_dir)
    if not overwrite:
        foreign = [name for name in files if not is_ours(out_dir / name, owned)]
        if foreign:
            raise QueryError(f"{out_dir / foreign[0]} is already there and audioscan did not write it (or it was "
                             f"changed since){f', nor {len(foreign) - 1} more' if len(foreign) > 1 else ''}; "
                             f"choose another `out_dir`, or give `overwrite` to replace {'it' if len(foreign) == 1 else 'them'}")
    written = [write_file(out_dir / name, text) for name, text in files.items()]
    owned.update({name: _digest(text.encode("utf-8")) for name, text in files.items()})
    write_file(out_dir / OWNED_RECORD, json.dumps(owned, indent=1, sort_keys=True) + "\n")
    return written


def is_ours(path: Path, owned: dict[str, str] | None = None) -> bool:
    """Whether ``path`` is absent, or still exactly the file this program last wrote there."""
    if not path.exists():
        return True
    owned = _owned(path.parent) if owned is None else owned
    try:
        return owned.get(path.name) == _digest(path.read_bytes())
    except OSError:
        return False


def _owned(out_dir: Path) -> dict[str, str]:
    try:
        found = json.loads((out_dir / OWNED_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def write_file(path: Path, text: str) -> Path:
    """Write ``text`` whole or not at all: to a temporary name beside ``path``, renamed over it only
    once every byte is written, so a full disk or a crash never leaves half a file."""
    if not path.parent.is_dir():
        raise QueryError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    data = text.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    created = False
    try:
        with open(tmp, "xb") as handle:  # created here, never an existing file of that name
            created = True
            handle.write(data)
        os.replace(tmp, path)
    except OSError as err:
        if created:
            tmp.unlink(missing_ok=True)  # only the temporary file this call created
        if err.errno == errno.ENOSPC:
            raise QueryError(f"the disk holding {path.parent} is full ({len(data) / 1e3:.0f} kB needed for "
                             f"{path.name}); free some space and run the command again") from None
        raise QueryError(f"cannot write {path} ({err.strerror or err})") from None
    return path
