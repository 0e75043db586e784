"""``rescore --all [NAMES]``: every detector (or the ones named) over one set's windows in one run,
each at its own threshold, as one table per window (``api.many``)."""

from __future__ import annotations

from pathlib import Path

import click

from audioscan.api.many import many_rows, many_text, score_every_detector
from audioscan.cli.console import echo_table, emit_text


def emit_many(obj, names: tuple[str, ...], *, top: int | None, where, fmt: str, out: Path | None,
              refused: dict[str, bool]) -> None:
    given = [flag for flag, present in refused.items() if present]
    if given:
        raise click.UsageError(f"--all scores windows with each detector at its own threshold; {', '.join(given)} "
                               "go with one detector's moments")
    if fmt not in ("table", "csv", "json"):
        raise click.UsageError(f"--all writes table, csv or json, not {fmt}")
    if fmt == "table" and out is not None:
        raise click.UsageError("--out writes a file: choose --format csv or json")
    found, elsewhere = score_every_detector(obj.library, names, where=where)
    if elsewhere:
        click.echo(f"left out, trained on another set: {', '.join(elsewhere)}", err=True)
    header, rows = many_rows(found, top)
    if fmt == "table":
        echo_table(header, rows)
    else:
        emit_text(obj, many_text(header, rows, fmt=fmt), out=out)
