"""The ``audioscan`` command: one root that composes the commands of each concern.

Every command body is a few lines over the Python API (``audioscan.api``): parse,
call, print.  User mistakes surface as one sentence on stderr and exit status 1,
decided here and nowhere else; Ctrl-C is exit 130 with a calm note.
"""

from __future__ import annotations

import click

from audioscan.cli.context import Context, add_global_options
from audioscan.cli.doctor import doctor
from audioscan.cli.export import export
from audioscan.cli.index import index
from audioscan.cli.models import models
from audioscan.cli.query import COMMANDS
from audioscan.cli.serve import serve
from audioscan.cli.vectors import vectors
import audioscan.api as api
from audioscan.api import UserError
from audioscan.api.faults import machine_fault


# API keywords whose flag is not ``--`` + the keyword in kebab case.
_FLAGS = {"models": "--model"}


def flag(keyword: str) -> str:
    """The CLI flag for an API keyword an error names (``ray_address`` -> ``--ray-address``)."""
    return _FLAGS.get(keyword, "--" + keyword.replace("_", "-"))


class AudioscanGroup(click.Group):
    """Turns the project's user errors and the machine's faults (``api.faults``) into click's
    one-line error (options spelled as flags), and Ctrl-C into a calm note."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            raise click.ClickException(err.render(flag)) from None
        except Exception as err:
            found = machine_fault(err)
            if found is None:
                raise
            raise click.ClickException(found.render(flag)) from None
        except KeyboardInterrupt:
            writing = ctx.ensure_object(Context).writing
            click.echo("interrupted; everything committed so far is kept" if writing else "interrupted", err=True)
            ctx.exit(130)


@click.group(cls=AudioscanGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="audioscan")
@click.pass_context
def main(ctx: click.Context) -> None:
    """A local embedding cache and vector search engine for the audio in media libraries.

    --store, --quiet and --threads may come before or after the command.
    """
    ctx.ensure_object(Context)
    api.thread_count()  # a bad AUDIOSCAN_THREADS is one sentence before any work starts


for command in (index, models, export, vectors, *COMMANDS, serve, doctor):
    main.add_command(command)
add_global_options(main)
