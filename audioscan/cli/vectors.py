"""``audioscan vectors ...``: the stored vectors out to other tools, and other tools' vectors in."""

from __future__ import annotations

from pathlib import Path

import click

from audioscan.cli.context import writes

FORMATS = click.Choice(["parquet", "hoplite"])
FORMAT_HELP = "parquet: one file; hoplite: a perch-hoplite (and BirdNET-Analyzer) database folder."


@click.group("vectors")
def vectors() -> None:
    """Move window vectors (and labels) between audioscan and other tools: pandas, DuckDB, polars
    (Parquet), perch-hoplite and BirdNET-Analyzer (their database)."""


@writes
@vectors.command("export")
@click.option("-m", "--model", "set_name", default=None, help="Embedding set or model (needed when the store has several).")
@click.option("--format", "fmt", type=FORMATS, default="parquet", show_default=True, help=FORMAT_HELP)
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The file to write (parquet), or the new folder of the database (hoplite).")
@click.option("--half", is_flag=True, help="Vectors as float16 (half the bytes; float32 by default, bit for bit); "
              "a hoplite database always holds float16.")
@click.option("--labels", "with_labels", is_flag=True,
              help="Also write the labels: beside the file as NAME.labels.parquet, or as the database's annotations.")
@click.pass_obj
def export_command(obj, set_name: str | None, *, fmt: str, out: Path, half: bool, with_labels: bool) -> None:
    """One row per window: root, path, start, end, channel, id, vector; the set's model, window, hop,
    rate and dimension in the schema's metadata.  Read it with pandas, polars or
    duckdb -c "select path, start, vector from 'FILE'".  A hoplite database holds a deployment per
    library root, a recording per file and the vectors at unit length, as search ranks them."""
    if fmt == "parquet" and out.is_dir():
        raise click.UsageError(f"{out} is a folder; a Parquet export is one file - give its name")
    written = obj.library.export_vectors(out, model=set_name, fmt=fmt, half=half, labels=with_labels)
    if not obj.quiet:
        click.echo(f"{written.rows} windows written to {written.path}"
                   + (f"; {written.labels} labels to {written.labels_path}" if written.labels_path else ""))


@writes
@vectors.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=FORMATS, default="parquet", show_default=True, help=FORMAT_HELP)
@click.option("--name", default=None, help="Name of the new set (default: the one the file gives, or its name).")
@click.option("--media-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder the file's paths are relative to (default: its root column).")
@click.pass_obj
def import_command(obj, path: Path, *, fmt: str, name: str | None, media_root: Path | None) -> None:
    """Make a new set of the vectors in PATH (a Parquet file, or a hoplite database folder); every
    query command then works on it (search from a stored window, train, rescore, suggest, export).
    Labels that come with them (NAME.labels.parquet beside the file, the database's annotations)
    are added.  Rows whose media file is not found are listed."""
    if (fmt == "hoplite") != path.is_dir():
        raise click.UsageError(f"{path} is {'a folder' if path.is_dir() else 'a file'}; --format {fmt} reads "
                               f"{'a database folder' if fmt == 'hoplite' else 'one file'}")
    done = obj.library.import_vectors(path, fmt=fmt, name=name, media_root=media_root)
    if done.not_native:
        click.echo(f"note: set {done.set_name} keeps the database's own vectors, not a BIRDNET set: {done.not_native}; "
                   "search from a clip does not work on it, every other command does", err=True)
    for missing in done.unmatched[:10]:
        click.echo(f"  not found: {missing}", err=True)
    if len(done.unmatched) > 10:
        click.echo(f"  and {len(done.unmatched) - 10} more not found", err=True)
    if not obj.quiet:
        click.echo(f"set {done.set_name}: {done.windows} windows of {done.files} files imported"
                   + (f"; {len(done.unmatched)} files not found (their windows were left out)" if done.unmatched else "")
                   + (f"; {done.labels} labels" if done.labels else "")
                   + (f"; {done.uncertain} uncertain labels left out" if done.uncertain else ""))
