"""``audioscan models ...``: what models exist and whether their weights are here."""

from __future__ import annotations

import click

from audioscan.api import models as catalogue
from audioscan.cli.console import echo_json, echo_table


@click.group("models")
def models() -> None:
    """List embedding models and fetch their weights."""


@models.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_command(fmt: str) -> None:
    """Every model: dimension, sample rate, default window, size, whether it runs offline now, licence."""
    rows = catalogue.list_models()
    if fmt == "json":
        echo_json([row.as_json() for row in rows])
    else:
        echo_table(["name", "dim", "rate", "window", "params", "available", "source", "licence"],
                   [[r.name, r.dim, r.sample_rate, f"{r.window:g} s", r.params, "yes" if r.available else "no",
                     r.source, r.licence] for r in rows])


@models.command("fetch")
@click.argument("names", nargs=-1, required=True)
def fetch_command(names: tuple[str, ...]) -> None:
    """Download the weights of NAMES into the local caches (run on a connected machine).

    Afterwards the models load offline: copy ~/.cache/huggingface and the torch hub
    checkpoints folder, or point $AUDIOSCAN_WEIGHTS_DIR at the files.
    """
    for name, filename, path in catalogue.fetch_weights(list(names)):
        click.echo(f"{name}: nothing to fetch (it has no weights)" if filename is None else
                   f"{name}: {filename} -> {path}")
