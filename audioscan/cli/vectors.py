"""``audioscan vectors ...``: the stored vectors out to other tools, and other tools' vectors in."""

from __future__ import annotations

from pathlib import Path

import click

from audioscan.cli.context import writes

FORMATS = click.Choice(["parquet"])


@click.group("vectors")
def vectors() -> None:
    """Move window vectors (and labels) between audioscan and other tools: pandas, DuckDB, polars."""


@writes
@vectors.command("export")
@click.option("-m", "--model", "set_name", default=None, help="Embedding set or model (needed when the store has several).")
@click.option("--format", "fmt", type=FORMATS, default="parquet", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="The file to write.")
@click.option("--half", is_flag=True, help="Vectors as float16 (half the bytes; float32 by default, bit for bit).")
@click.option("--labels", "with_labels", is_flag=True, help="Also write the labels beside it, as NAME.labels.parquet.")
@click.pass_obj
def export_command(obj, set_name: str | None, fmt: str, out: Path, half: bool, with_labels: bool) -> None:
    """One row per window: root, path, start, end, channel, id, vector; the set's model, window, hop,
    rate and dimension in the schema's metadata.  Read it with pandas, polars or
    duckdb -c "select path, start, vector from 'FILE'"."""
    written = obj.library.export_vectors(out, model=set_name, half=half, labels=with_labels)
    if not obj.quiet:
        click.echo(f"{written.rows} windows written to {written.path}"
                   + (f"; {written.labels} labels to {written.labels_path}" if written.labels_path else ""))


@writes
@vectors.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="parquet", show_default=True)
@click.option("--name", default=None, help="Name of the new set (default: the one the file gives, or its name).")
@click.option("--media-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder the file's paths are relative to (default: its root column).")
@click.pass_obj
def import_command(obj, path: Path, fmt: str, name: str | None, media_root: Path | None) -> None:
    """Make a new set of the vectors in PATH; every query command then works on it (search from a
    stored window, train, rescore, suggest, export).  Rows whose media file is not found are listed."""
    done = obj.library.import_vectors(path, name=name, media_root=media_root)
    for missing in done.unmatched[:10]:
        click.echo(f"  not found: {missing}", err=True)
    if len(done.unmatched) > 10:
        click.echo(f"  and {len(done.unmatched) - 10} more not found", err=True)
    if not obj.quiet:
        click.echo(f"set {done.set_name}: {done.windows} windows of {done.files} files imported"
                   + (f"; {len(done.unmatched)} files not found (their windows were left out)" if done.unmatched else ""))
