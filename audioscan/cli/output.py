"""Writing result files the user named, with a sentence instead of a traceback when it cannot be done."""

from __future__ import annotations

from pathlib import Path

from audioscan.errors import UserError


class OutputError(UserError):
    """An output file or folder the user named cannot be written."""


def write_text(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the folder {path.parent} does not exist; create it first")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise OutputError(f"cannot write {path} ({err.strerror or err})") from None
