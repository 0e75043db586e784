"""``audioscan models ...``: what models exist and whether their weights are here."""

from __future__ import annotations

import click

from indexer.console import echo_json, echo_table
from models import registry
from models.base import LoadOptions


@click.group("models")
def models() -> None:
    """List embedding models and fetch their weights."""


@models.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_command(fmt: str) -> None:
    """Every model: dimension, sample rate, size, and whether it runs offline now."""
    options = LoadOptions()
    rows = [{"name": s.name, "dim": s.dim, "sample_rate": s.sample_rate, "params": s.params,
             "available": s.available(options), "source": s.source}
            for s in (registry.spec(name) for name in registry.names())]
    if fmt == "json":
        echo_json(rows)
    else:
        echo_table(["name", "dim", "rate", "params", "available", "source"],
                   [[r["name"], r["dim"], r["sample_rate"], r["params"], "yes" if r["available"] else "no",
                     r["source"]] for r in rows])
