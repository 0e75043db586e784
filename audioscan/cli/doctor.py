"""``audioscan doctor``: is every native library this install needs loadable and working?"""

from __future__ import annotations

import click

from audioscan.cli.console import echo_json, echo_table


@click.command("doctor")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def doctor(fmt: str) -> None:
    """Load torch + torchaudio, PyAV, FAISS, DuckDB and scikit-learn and run each once.

    Exit 0 and the versions when all work; otherwise one sentence on what does not load
    and how to repair it (make demo and make test run this before they call an install done).
    """
    from audioscan.api.installation import check_installation

    found = check_installation()
    if fmt == "json":
        echo_json({component.name: component.version for component in found})
        return
    echo_table(["library", "version"], [[component.name, component.version] for component in found])
    versions = {component.name: component.version for component in found}
    click.echo(f"installation ok: torch {versions['torch']} with torchaudio {versions['torchaudio']}")
