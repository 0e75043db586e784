"""What the CLI shows people: progress bars on a terminal, tables, JSON.

Progress goes to stderr and only when stderr is a terminal and --quiet is off, so a
pipe or a script gets nothing but the result on stdout; a notice a person must hear (a build
waiting on its cluster, and why) goes to stderr whenever --quiet is off.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import click

from audioscan.api import Progress
from audioscan.api.moments import write_file


def show_progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


class BarProgress(Progress):
    """A tqdm bar: files done of files to embed, windows embedded, windows/s, ETA."""

    def __init__(self) -> None:
        self._bar = None
        self._windows = 0

    def status(self, text: str) -> None:
        click.echo(text, err=True)

    def notice(self, text: str) -> None:
        click.echo(text, err=True)

    def start(self, files: int) -> None:
        from tqdm import tqdm

        if files:
            self._bar = tqdm(total=files, unit="file", file=sys.stderr, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files{postfix} [{elapsed}<{remaining}]")

    def advance(self, files: int, windows: int) -> None:
        if self._bar is None:
            return
        self._windows += windows
        elapsed = max(self._bar.format_dict["elapsed"], 1e-6)
        self._bar.set_postfix_str(f"{self._windows} windows, {self._windows / elapsed:.0f} windows/s", refresh=False)
        self._bar.update(files)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class NoticeProgress(Progress):
    """No bar (stderr is no terminal: a log, a cluster job), but the notices a person must hear."""

    def notice(self, text: str) -> None:
        click.echo(text, err=True)


def progress_for(quiet: bool) -> Progress:
    """A bar on a terminal; elsewhere only notices; nothing with --quiet."""
    if show_progress(quiet):
        return BarProgress()
    return Progress() if quiet else NoticeProgress()


def emit_text(obj, text: str, *, out: Path | None) -> None:
    """``text`` printed, or written to ``out`` (whose path is then printed, unless --quiet)."""
    if out is None:
        click.echo(text, nl=False)
    else:
        write_file(out, text)
        if not obj.quiet:
            click.echo(str(out))


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned table; numbers right-aligned, floats to 3 decimals."""
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return "" if value is None else str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) for row in rows) and rows for i in range(len(headers))]
    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()
    click.echo(line(headers))
    for row in text:
        click.echo(line(row))


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere insist on --yes, so a script never deletes by accident."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError("this deletes stored data: add --yes to confirm")
    click.confirm(question, abort=True)
