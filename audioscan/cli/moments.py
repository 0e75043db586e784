"""How every command that lists moments prints or writes them (one place, one set of options)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import click

from audioscan.api.moments import Moment, MomentFilter, moments_text, timecode, write_moments
from audioscan.api.options import MOMENT_FORMATS
from audioscan.cli.console import echo_table

FORMATS = ("table", *MOMENT_FORMATS)


def moment_options(command: Callable) -> Callable:
    """``--format``, ``--out``, ``--out-dir``, ``--timecode`` and ``--overwrite``."""
    for option in reversed([
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                     help="table, csv, json, ndjson, raven (Raven Pro selection table), edl (CMX 3600), "
                          "markers (CSV for video editors) or audacity (label tracks)."),
        click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write one combined file here instead of printing."),
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Write one file per media file into this folder."),
        click.option("--timecode", "use_timecode", is_flag=True,
                     help="Times as HH:MM:SS:FF at each file's frame rate (25 for audio) instead of seconds."),
        click.option("--overwrite", is_flag=True,
                     help="With --out-dir: replace files there that audioscan did not write (or that were changed)."),
    ]):
        command = option(command)
    return command


def filter_options(command: Callable) -> Callable:
    """``--site``, ``--after``, ``--before``, ``--hours``, ``--path`` and ``--channel``, given to the command as one
    ``where`` (a ``MomentFilter``): the windows it keeps are the only ones read and scored."""
    @functools.wraps(command)
    def filtered(*args, sites: tuple[str, ...], after: str | None, before: str | None, hours: str | None,
                 path_globs: tuple[str, ...], channels: tuple[int, ...], **kwargs):
        where = MomentFilter.parse(sites=sites, after=after, before=before, hours=hours, paths=path_globs,
                                   channels=channels)
        return command(*args, where=where, **kwargs)

    for option in reversed([
        click.option("--site", "sites", multiple=True, help="Only moments of this site (repeat for several)."),
        click.option("--after", default=None,
                     help="Only moments from this date or date and time on (2024-03-10, 2024-03-10T02:00; the "
                          "recorder's local time, or an instant with +01:00 or Z)."),
        click.option("--before", default=None, help="Only moments before this date or date and time (as --after)."),
        click.option("--hours", default=None,
                     help="Only moments at these clock times of the recording's own zone, e.g. 02:00-05:00 "
                          "(22:00-04:00 crosses midnight)."),
        click.option("--path", "path_globs", multiple=True,
                     help="Only files matching this glob (absolute path, path in its folder, or name; repeat)."),
        click.option("--channel", "channels", multiple=True, type=click.IntRange(1),
                     help="Only this channel (from 1) of a set built with --channels split (repeat for several)."),
    ]):
        filtered = option(filtered)
    return filtered


def emit(obj, moments: list[Moment], *, fmt: str, out: Path | None, out_dir: Path | None, use_timecode: bool,
         overwrite: bool = False) -> None:
    if out is not None and out_dir is not None:
        raise click.UsageError("give --out FILE or --out-dir DIR, not both")
    if fmt == "table":
        if out is not None or out_dir is not None:
            raise click.UsageError("--out and --out-dir write files: choose a --format (csv, json, raven, ...)")
        show = (lambda m, s: timecode(s, m.fps) if s is not None else "") if use_timecode else (lambda m, s: s)
        peaks = any(m.peak is not None for m in moments)
        channels = any(m.channel for m in moments)
        echo_table(["score"] + (["peak"] if peaks else []) + ["start", "end"] + (["channel"] if channels else [])
                   + ["path"] + (["label"] if any(m.score is None for m in moments) else []),
                   [[m.score] + ([show(m, m.peak)] if peaks else []) + [show(m, m.start), show(m, m.end)]
                    + ([m.channel] if channels else []) + [m.path]
                    + ([m.label] if m.score is None else []) for m in moments])
        return
    if out is None and out_dir is None:
        click.echo(moments_text(moments, fmt, use_timecode=use_timecode), nl=False)
        return
    written = write_moments(moments, fmt, out=out, out_dir=out_dir, use_timecode=use_timecode, overwrite=overwrite)
    if not obj.quiet:
        for path in written:
            click.echo(str(path))
