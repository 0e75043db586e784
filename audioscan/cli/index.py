"""``audioscan index ...``: build, status, check, compact and repair a store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audioscan.api import options
from audioscan.api.moments import table_csv
from audioscan.cli.cluster import cluster_of, ray_options
from audioscan.cli.console import confirm, echo_json, echo_table, progress_for
from audioscan.cli.context import writes

FORMATS = click.Choice(["table", "json"])


@click.group("index")
def index() -> None:
    """Build and inspect the store of embeddings."""


@writes
@index.command("build")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--model", "-m", "models", multiple=True,
              help="Embedding model (repeat for several; all share one decoding pass). Default: every set the "
                   "store holds, or LOGMEL for a new store.")
@click.option("--window", type=float, default=None, help="Window length in seconds (default: the model's own, 8; BIRDNET 3).")
@click.option("--hop", type=float, default=None, help="Seconds between window starts (default 1).")
@click.option("--include", multiple=True, help="Only files matching this glob (path or name; repeat).")
@click.option("--exclude", multiple=True, help="Leave out files matching this glob (path or name; repeat).")
@click.option("--weights", type=click.Path(exists=True, path_type=Path), default=None,
              help="Weights file (or folder) of the one --model, instead of looking in the caches.")
@click.option("--batch-size", type=click.IntRange(1), default=None,
              help="Windows per model call (default: chosen per model and device).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "fp16", "bf16"]), default="auto", show_default=True,
              help="Inference precision; auto = fp16 autocast on CUDA, fp32 on CPU.")
@click.option("--decode-workers", type=click.IntRange(1), default=1, show_default=True,
              help="Threads decoding media ahead of the model.")
@click.option("--commit-every", type=click.FloatRange(0), default=20.0, show_default=True,
              help="Seconds between commits; a crash loses at most the files finished since the last one.")
@click.option("--dtype", type=click.Choice(list(options.VECTOR_DTYPES)), default=options.DEFAULT_DTYPE, show_default=True,
              help="How new sets keep their vectors: float16 (half the disk; a score moves by about 1e-3) or "
                   "float32 (bit for bit); a set keeps its own ('index compact --dtype' converts one).")
@click.option("--channels", type=click.Choice(list(options.CHANNEL_MODES)), default=None,
              help="How a multichannel file is heard: mix (one mono downmix, the default for a new set) or split "
                   "(each channel its own stream, in a set of its own named ...-split; every result names "
                   "the channel).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where decoding and embedding run: this process, or a Ray cluster (pip install "
                   "\"audioscan[ray]\"); this process stays the store's only writer either way.")
@ray_options
@click.option("--site", default=None, help="Name each FOLDER (and FILE) given this site (see 'index sites').")
@click.option("--strict", is_flag=True, help="Exit with status 1 when any file under FOLDER is failed (now or before).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_obj
def build_command(obj, paths: tuple[Path, ...], *, models: tuple[str, ...], window: float | None, hop: float | None,
                  include: tuple[str, ...], exclude: tuple[str, ...], weights: Path | None,
                  batch_size: int | None, device: str, precision: str, decode_workers: int, commit_every: float,
                  dtype: str, channels: str | None, engine: str, site: str | None, strict: bool, fmt: str,
                  **ray: object) -> None:
    """Index every media file under each FOLDER, and each FILE given (again: only what changed).

    With no --model, --window, --hop or --channels, every embedding set the store holds is
    brought up to date, so none falls behind.
    """
    cluster = cluster_of(engine, ray)
    progress = progress_for(obj.quiet)
    report = obj.library.build(list(paths), models=models, window=window, hop=hop, device=device,
                               precision=precision, weights=weights, batch_size=batch_size,
                               decode_workers=decode_workers, commit_every=commit_every, dtype=dtype,
                               progress=progress, include=include, exclude=exclude, ray=cluster, site=site,
                               channels=channels)
    if fmt == "json":
        echo_json(report.as_json())
    elif not obj.quiet:
        click.echo(f"{report.files_seen} media files: {report.files_indexed} indexed, {report.files_skipped} "
                   f"unchanged, {report.files_reused} moved (vectors kept), {report.files_removed} removed, "
                   f"{report.files_failed} failed; {report.windows_embedded} windows embedded in {report.seconds:.1f} s")
    if obj.quiet:
        pass
    elif report.unavailable:
        click.echo(f"{len(report.unavailable)} indexed file(s) are unavailable (their folder could not be read, "
                   "or it is empty: a disk not mounted?); their vectors are kept and come back with them. "
                   "To drop them for good: 'audioscan index forget FOLDER'", err=True)
    if report.failures and not obj.quiet:
        click.echo(f"{len(report.failures)} file(s) could not be indexed:", err=True)
        for path, reason in report.failures:
            click.echo(f"  {path}: {reason}", err=True)
    if report.still_failing and not obj.quiet:
        click.echo(f"{report.still_failing} unchanged file(s) still fail as before; "
                   "'audioscan index status' lists why", err=True)
    if strict and (report.files_failed or report.still_failing):
        sys.exit(1)


@index.command("status")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.pass_obj
def status_command(obj, fmt: str) -> None:
    """What the store holds: embedding sets, media counts, failed files."""
    status = obj.library.status()
    if fmt == "json":
        echo_json(status)
        return
    click.echo(f"store {status['store']}")
    echo_table(["set", "model", "dim", "window", "hop", "windows", "segments", "files behind"],
               [[s["name"], s["model"], s["dim"], s["window"], s["hop"], s["windows"], s["segments"], s["behind"]]
                for s in status["sets"]])
    if status["writer"]:
        click.echo(f"a build is running ({status['writer']}); files behind are those it has not committed yet")
    elif any(s["behind"] for s in status["sets"]):
        click.echo("'audioscan index build FOLDER' (with no --model) brings every set up to date")
    media = status["media"]
    click.echo(f"media: {media['ok']} ok, {media['failed']} failed, {media['missing']} missing from disk, "
               f"{media['unavailable']} unavailable")
    for item in status["sites"]:
        click.echo(f"site {item['site'] if item['site'] is not None else '(none)'}: {item['files']} file(s), "
                   f"{item['hours']:g} hours")
    for item in status["failed"]:
        click.echo(f"  failed: {item['path']}: {item['error']}")
    for item in status["warnings"]:
        click.echo(f"  warning: {item['path']}: {item['warning']}")


@index.command("check")
@click.pass_obj
def check_command(obj) -> None:
    """Verify the store; exit 0 when consistent, 1 with the reasons otherwise."""
    problems, notes = obj.library.check()
    if not obj.quiet:
        for note in notes:
            click.echo(f"note: {note}", err=True)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        click.echo("to recover: 'audioscan index repair', then 'audioscan index build FOLDER'", err=True)
        sys.exit(1)
    if not obj.quiet:
        click.echo("store is consistent")


@writes
@index.command("compact")
@click.option("--dtype", type=click.Choice(list(options.VECTOR_DTYPES)), default=None,
              help="Also rewrite every set's vectors in this dtype (float16: half the disk), crash-safe like any "
                   "compaction.")
@click.pass_obj
def compact_command(obj, dtype: str | None) -> None:
    """Merge small segments and drop the vectors of deleted or re-embedded windows."""
    for report in obj.library.compact(dtype=dtype):
        if not obj.quiet:
            click.echo(f"{report.set_name}: {report.segments_before} -> {report.segments_after} segments, "
                       f"{report.vectors_dropped} dead vectors dropped")


@writes
@index.command("repair")
@click.pass_obj
def repair_command(obj) -> None:
    """Rebuild a damaged or missing catalog (labels and detectors from their journal) and drop the
    windows of lost or damaged segments; the next 'index build' embeds those files again."""
    report = obj.library.repair()
    if report.rebuilt is not None and not obj.quiet:
        click.echo(report.rebuilt.sentence(), err=True)
    if not obj.quiet:
        click.echo(f"{len(report.segments)} damaged or missing segment(s) dropped; {report.files} file(s) "
                   "will be embedded again by the next 'audioscan index build'")


@writes
@index.command("forget")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask (needed when not on a terminal).")
@click.pass_obj
def forget_command(obj, folder: Path, *, yes: bool) -> None:
    """Drop the vectors of every file under FOLDER for good (their labels are kept).

    A build never does this by itself: a folder that is empty or unreadable (a disk not
    mounted) keeps its vectors until you forget it here.
    """
    confirm(f"drop every vector of the files under {folder}?", yes)
    count = obj.library.forget(folder)
    if not obj.quiet:
        click.echo(f"forgot {count} file(s) under {folder}; their labels are kept")


@writes
@index.command("remove-set")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask (needed when not on a terminal).")
@click.pass_obj
def remove_set_command(obj, name: str, *, yes: bool) -> None:
    """Drop the embedding set NAME (see 'index status'), and the detectors trained on it."""
    confirm(f"drop every vector of set {name}?", yes)
    info, dropped = obj.library.remove_set(name)
    if not obj.quiet:
        click.echo(f"removed set {info.name}" + (f" and {dropped} detector version(s) trained on it" if dropped else ""))


@index.command("times")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.pass_obj
def times_command(obj, file: Path | None, *, fmt: str) -> None:
    """When each recording started, and where that was found (container, audiomoth, song meter, user).

    With FILE (a CSV of path, start, time zone), its starts are stored first and win over found
    ones; a file with any bad row stores nothing.  A start is ISO 8601 (2024-03-31T01:30:00, with its
    offset when known); the zone is an IANA name (Europe/Berlin, UTC) or an offset (+10:00), or empty
    when unknown.  Files without a start are listed with an empty one, never given a made-up one.
    """
    if file is not None:
        stored = obj.library.recordings.give_times(file)
        if not obj.quiet:
            click.echo(f"stored {stored} recording start(s) from {file.name}", err=True)
    rows = obj.library.recordings.list()
    if fmt == "json":
        echo_json([row.as_json() for row in rows])
    elif fmt == "csv":
        click.echo(table_csv(["path", "start", "zone", "source", "site"],
                             [[row.path, row.start, row.zone, row.source, row.site] for row in rows]), nl=False)
    else:
        echo_table(["start", "zone", "source", "site", "path"],
                   [[row.start or "", row.zone or "", row.source or "", row.site or "", row.path] for row in rows])
        missing = sum(row.start is None for row in rows)
        if missing and not obj.quiet:
            click.echo(f"{missing} file(s) have no known start; give them with 'audioscan index times FILE.csv'",
                       err=True)


@index.command("sites")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def sites_command(obj, file: Path | None, *, fmt: str) -> None:
    """Sites, their folders, and the files and hours of audio each holds.

    With FILE (a CSV of site, latitude, longitude, folder, and optionally time zone: the zone the site's
    recorder clocks keep, which places Song Meter names' local times), its sites are stored first: a folder is
    absolute or relative to FILE's folder and must be indexed (or inside an indexed one); a site may
    have several folders, one row each.  A file with any bad row stores nothing.  'index build
    --site NAME' names the folders it builds.
    """
    sites = obj.library.recordings.load_sites(file) if file is not None else obj.library.recordings.sites()
    if fmt == "json":
        echo_json([site.as_json() for site in sites])
        return
    echo_table(["site", "latitude", "longitude", "zone", "files", "hours", "folders"],
               [[site.name, "" if site.latitude is None else site.latitude,
                 "" if site.longitude is None else site.longitude, site.zone or "", site.files, site.hours,
                 "; ".join(site.folders)]
                for site in sites])
