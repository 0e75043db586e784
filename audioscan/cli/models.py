"""``audioscan models ...``: what models exist and whether their weights are here."""

from __future__ import annotations

import click

from audioscan.cli.console import echo_json, echo_table
from audioscan.models import registry
from audioscan.models.base import LoadOptions


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


@models.command("fetch")
@click.argument("names", nargs=-1, required=True)
def fetch_command(names: tuple[str, ...]) -> None:
    """Download the weights of NAMES into the local caches (run on a connected machine).

    Afterwards the models load offline: copy ~/.cache/huggingface and the torch hub
    checkpoints folder, or point $AUDIOSCAN_WEIGHTS_DIR at the files.
    """
    from audioscan.models import weights
    from audioscan.models.errors import ModelError

    for spec in dict.fromkeys(registry.spec(name) for name in names):
        if not spec.files:
            click.echo(f"{spec.name}: nothing to fetch (it has no weights)")
            continue
        for file in spec.files:
            if weights.find_local(file) is None and not weights.network_reachable(file.host):
                raise ModelError(f"cannot reach {file.host} to download {file.filename} for {spec.name}; run "
                                 "this on a connected machine, then copy ~/.cache/huggingface and "
                                 "~/.cache/torch/hub (or set $AUDIOSCAN_WEIGHTS_DIR) here")
            path = weights.resolve(spec.name, file, allow_download=True)
            click.echo(f"{spec.name}: {file.filename} -> {path}")
