"""The options every command takes, wherever they are typed.

``--store``, ``--quiet`` and ``--threads`` belong to the root command and to every subcommand, so
``audioscan --store x index status`` and ``audioscan index status --store x`` mean
the same; the value given last wins.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import click

import audioscan.api as api

DEFAULT_STORE = Path(".audioscan")


@dataclass
class Context:
    store: Path = field(default_factory=lambda: Path(os.environ.get("AUDIOSCAN_STORE") or DEFAULT_STORE))
    quiet: bool = False
    writing: bool = False  # the running command changes the store or writes files (see ``writes``)

    @property
    def library(self) -> "api.Library":
        return api.open(self.store)


def given(param: str, ctx: click.Context | None = None) -> bool:
    """Whether the user gave the option ``param`` (its value did not come from its default)."""
    source = (ctx or click.get_current_context()).get_parameter_source(param)
    return source is not None and source is not click.core.ParameterSource.DEFAULT


def writes(command: click.Command) -> click.Command:
    """Mark a command that changes the store or writes files, so Ctrl-C says that what was
    committed is kept (a command that only reads has nothing to keep)."""
    callback = command.callback
    assert callback is not None  # every command of ours has one

    @functools.wraps(callback)
    def marked(*args, **kwargs):
        click.get_current_context().ensure_object(Context).writing = True
        return callback(*args, **kwargs)

    command.callback = marked
    return command


def _set_store(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.ensure_object(Context).store = value


def _set_quiet(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Context).quiet = True


def _set_threads(ctx: click.Context, _param: click.Parameter, value: int | None) -> None:
    """Apply ``--threads`` while parsing; a refused count (far beyond the cores) is click's one-line
    usage error here, where ``--threads`` before the command is parsed outside the commands' error
    handling."""
    if value is not None:
        try:
            api.set_threads(value)
        except api.UserError as err:
            raise click.UsageError(err.render(lambda keyword: "--" + keyword), ctx) from None


def _options() -> list[click.Option]:
    return [click.Option(["--store"], type=click.Path(file_okay=False, path_type=Path), default=None,
                         expose_value=False, callback=_set_store, is_eager=True,
                         help=f"Store folder (default $AUDIOSCAN_STORE or {DEFAULT_STORE})."),
            click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, callback=_set_quiet,
                         help="Print only results: no progress, no summaries."),
            click.Option(["--threads"], type=click.IntRange(1), default=None, expose_value=False,
                         callback=_set_threads, is_eager=True,
                         help="Threads for every pool (models, FAISS, decoding; default $AUDIOSCAN_THREADS "
                              "or the cores this process may use).")]


def add_global_options(command: click.Command, done: set[int] | None = None) -> None:
    """Give ``command`` and every command under it ``--store``, ``--quiet`` and ``--threads``, once each
    (an alias shares its command's options and subcommands)."""
    done = set() if done is None else done
    if id(command.params) in done:
        return
    done.add(id(command.params))
    command.params.extend(_options())
    for sub in getattr(command, "commands", {}).values():
        add_global_options(sub, done)
