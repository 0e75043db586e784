"""The ``audioscan`` command: one root that composes each package's own commands.

User mistakes (a missing store, an unknown model, a bad time range) surface as one
sentence on stderr and a non-zero exit, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from indexer.cli import index
from indexer.console import echo_json, echo_table
from indexer.errors import MediaError, StoreError
from indexer.store import Store
from models.base import LoadOptions
from models.cli import models
from models.errors import ModelError
from query.errors import QueryError
from query.search import SetIndex, embed_clip

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


main.add_command(index)
main.add_command(models)


@main.command("search")
@click.argument("clip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--start", type=float, default=0.0, show_default=True, help="Clip start, seconds.")
@click.option("--end", type=float, default=None, help="Clip end, seconds (default: end of file).")
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many hits.")
@click.option("--model", "set_name", default=None, help="Embedding set or model to search (needed when the store has several).")
@click.option("--device", default="cpu", show_default=True, help="Where to embed the clip.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def search_command(obj: Context, clip: Path, start: float, end: float | None, k: int, set_name: str | None,
                   device: str, fmt: str) -> None:
    """Find the moments that sound like CLIP (cosine similarity).

    Only the clip is embedded, with the set's own model.  A clip longer than one
    window is embedded window by window and searched with the mean of those vectors.
    Overlapping matching windows of one file are merged into one hit.
    """
    with Store.open(obj.store) as store:
        info = store.find_set(set_name)
        query = embed_clip(clip, info, start, end, LoadOptions(device=device))
        hits = SetIndex(store, info).search(query, k)
    if fmt == "json":
        echo_json([hit.as_json() for hit in hits])
    else:
        echo_table(["score", "start", "end", "path"], [[h.score, h.start, h.end, h.path] for h in hits])
