"""The ``audioscan`` command: one root that composes each package's own commands.

User mistakes (a missing store, an unknown model, a bad time range) surface as one
sentence on stderr and a non-zero exit, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from audioscan.cli.index import index
from audioscan.indexer.errors import MediaError, StoreError
from audioscan.cli.models import models
from audioscan.models.errors import ModelError
from audioscan.cli.query import COMMANDS
from audioscan.query.errors import QueryError

USER_ERRORS = (StoreError, MediaError, ModelError, QueryError)


@dataclass
class Context:
    store: Path
    quiet: bool


class AudioscanGroup(click.Group):
    """Turns the project's user errors into click's one-line error, and Ctrl-C into a calm note."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except USER_ERRORS as err:
            raise click.ClickException(str(err)) from None
        except KeyboardInterrupt:
            click.echo("interrupted; everything committed so far is kept", err=True)
            ctx.exit(130)


@click.group(cls=AudioscanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), envvar="AUDIOSCAN_STORE",
              default=Path(".audioscan"), show_default=True, help="Store folder (or set AUDIOSCAN_STORE).")
@click.option("--quiet", "-q", is_flag=True, help="Print only results: no progress, no summaries.")
@click.version_option(package_name="audioscan")
@click.pass_context
def main(ctx: click.Context, store: Path, quiet: bool) -> None:
    """A local embedding cache and vector search engine for the audio in media libraries."""
    ctx.obj = Context(store, quiet)


for command in (index, models, *COMMANDS):
    main.add_command(command)
