"""The query commands: search, labels, train, rescore, suggest, detectors (alias: classifiers).

Only ``search CLIP`` runs a model (to embed the clip); everything else reads the
stored vectors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audioscan.api import options
from audioscan.api.labels import READ_FORMATS, check_label_name
from audioscan.api.moments import parse_time, timecode
from audioscan.cli.console import confirm, echo_json, echo_table, emit_text
from audioscan.cli.context import given, writes
from audioscan.cli.moments import emit, filter_options, moment_options
from audioscan.cli.rescore import rescore


class TimeType(click.ParamType):
    """Seconds, minutes:seconds or hours:minutes:seconds (754.5, 12:34.5, 1:02:03.250)."""

    name = "TIME"

    def convert(self, value, param, ctx):
        return parse_time(value)  # a QueryError: one sentence, like every other user error


TIME = TimeType()


@click.command("search")
@click.argument("clips", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--start", type=TIME, default=0.0, show_default=True, help="Clip start (seconds or 1:02.5).")
@click.option("--end", type=TIME, default=None, help="Clip end (default: end of the clip).")
@click.option("--from", "from_media", default=None, help="Search from a stored window of this indexed file...")
@click.option("--at", type=TIME, default=None, help="...the window around this time; runs no model.")
@click.option("--from-channel", type=click.IntRange(1), default=None,
              help="...of this channel, in a set built with --channels split (needed when the file has several).")
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="How many hits.")
@click.option("--per-file", type=click.IntRange(1), default=None, help="At most N hits from one file.")
@click.option("-m", "--model", "set_names", multiple=True,
              help="Embedding set or model (needed when the store has several); repeat to combine sets.")
@click.option("--device", default="auto", show_default=True, help="Where to embed the clip (auto, cpu, cuda[:n]).")
@click.option("--exclude-file", "exclude_files", multiple=True, help="Leave this indexed file out of the hits (repeat).")
@click.option("--min-score", type=float, default=None, help="Only hits scoring at least this.")
@click.option("--refine", is_flag=True,
              help="Place each sound finely: embed each result's span again every quarter hop (costs model time).")
@filter_options
@moment_options
@click.pass_obj
def search(obj, clips: tuple[Path, ...], *, start: float, end: float | None, from_media: str | None, at: float | None,
           from_channel: int | None, k: int, per_file: int | None, set_names: tuple[str, ...], device: str,
           exclude_files: tuple[str, ...],
           min_score: float | None,
           refine: bool, fmt: str, out: Path | None, out_dir: Path | None, use_timecode: bool, overwrite: bool,
           where) -> None:
    """Find the moments that sound like CLIPS, or like a stored moment (--from FILE --at S).

    Scores are cosine similarity.  Only the clip is embedded, with the set's own
    model; a clip longer than one window is embedded window by window, like the
    library, and searched with the mean of those vectors.  --from/--at reads the
    stored vector and loads no model; the query's own window is left out of the hits.
    Several clips are searched by the mean of their vectors (a prototype of the sound).
    Each hit is one sound: the matching windows around a file's best one, down to the
    valleys on both sides, so the first N hits of any -k are the hits of -k N (--per-file
    keeps at most N hits of one file); each hit's peak is where the windows that match
    best overlap (--refine places it from a finer cut).  With several
    --model, each set scores the query with its own model and their standardised
    scores are combined on the first set's windows, weighted by how far each set's
    best window stands out (scores are then standard deviations above the sets'
    means); put the set with the finer windows first: its windows carry the hits.
    """
    if bool(clips) == (from_media is not None) or (from_media is None) != (at is None):
        raise click.UsageError("give either CLIP..., or --from FILE with --at TIME")
    if from_channel is not None and from_media is None:
        raise click.UsageError("--from-channel says which channel of the --from FILE to search from; give --from")
    if len(clips) > 1 and (start or end is not None):
        raise click.UsageError("--start/--end cut one clip; give a single CLIP with them")
    query = (from_media, at) if not clips else (list(clips) if len(clips) > 1 else clips[0])
    model = set_names[0] if len(set_names) == 1 else (list(set_names) or None)
    hits = obj.library.search(query, k=k, model=model, start=start, end=end, device=device,
                              exclude_files=exclude_files, min_score=min_score, refine=refine, per_file=per_file,
                              where=where, from_channel=from_channel)
    emit(obj, obj.library.moments(hits), fmt=fmt, out=out, out_dir=out_dir, use_timecode=use_timecode,
         overwrite=overwrite)


@click.group("labels")
def labels() -> None:
    """Mark moments (ranges or point markers, positive or negative) to train detectors."""


@writes
@labels.command("add")
@click.argument("media")
@click.argument("values", nargs=-1, required=True)
@click.option("--marker", is_flag=True, help="A point marker: MEDIA TIME LABEL (windows within the tolerance count).")
@click.option("--negative", is_flag=True, help="This moment does NOT contain the label.")
@click.option("--channel", type=click.IntRange(1), default=None,
              help="Only this channel (from 1) holds it: a set built with --channels split trains on that channel "
                   "alone (default: the whole file).")
@click.pass_obj
def labels_add(obj, media: str, *, values: tuple[str, ...], marker: bool, negative: bool, channel: int | None) -> None:
    """Label MEDIA: START END LABEL for a range, or START LABEL with --marker."""
    if len(values) != (2 if marker else 3):
        raise click.UsageError("give START END LABEL (or START LABEL with --marker)")
    start = parse_time(values[0])
    end = None if marker else parse_time(values[1])
    added = obj.library.labels.add(media, start, end=end, label=values[-1], negative=negative, source="cli",
                                   channel=channel or 0)
    if not obj.quiet:
        kind = "marker" if marker else "range"
        click.echo(f"added {'negative ' if negative else ''}{kind} '{values[-1]}' on {media}" if added is not None else
                   f"'{values[-1]}' already has this {kind} on {media}; nothing added")
    _warn_conflicts(obj.library.labels.conflicts(values[-1], ids=[] if added is None else [added]))


def _warn_conflicts(pairs: list) -> None:
    """One line for every overlapping positive and negative, however many: the first pair and a count."""
    if not pairs:
        return
    pos, neg = pairs[0]
    more = f" (and {len(pairs) - 1:,} more such pairs; 'labels list' shows them)" if len(pairs) > 1 else ""
    click.echo(f"warning: positive {pos.start:g}-{pos.end:g} s and negative {neg.start:g}-{neg.end:g} s of "
               f"'{pos.label}' overlap on {pos.media.rel}{more}; training counts an overlap as positive", err=True)


@writes
@labels.command("import", help=f"""Import labels from FILE: {READ_FORMATS}; an Audacity
track or a one-file Raven table with --media.  A negative column says true/false, yes/no, 1/0 or negative/positive.""")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--media", default=None, help="The media file an Audacity track or a one-file Raven table belongs to.")
@click.option("--label", default=None, help="Label name for every row (else taken from the file).")
@click.option("--negative", is_flag=True, help="Import every row as negative (e.g. rejected detections).")
@click.option("--skip-missing", is_flag=True,
              help="Import the rows whose files are indexed and list the others (default: import nothing then).")
@click.option("--check", is_flag=True, help="Check every row and say what would be imported; store nothing.")
@click.pass_obj
def labels_import(obj, file: Path, *, media: str | None, label: str | None, negative: bool, skip_missing: bool,
                  check: bool) -> None:
    report = obj.library.labels.import_file(file, media=media, label=label, negative=negative,
                                            skip_missing=skip_missing, check=check)
    if check:
        click.echo(f"{file.name}: every row can be imported; would import {report.added} label(s)"
                   + (f" ({report.already} already there)" if report.already else "") + ": "
                   + (", ".join(f"'{name}' {pos} positive, {neg} negative" for name, (pos, neg) in report.names.items())
                      or "none") + "; nothing was stored (--check)")
    elif not obj.quiet:
        click.echo(f"imported {report.added} label(s) from {file.name}")
    if report.skipped:
        click.echo(f"{'would skip' if check else 'skipped'} {len(report.skipped)} row(s) whose file is not indexed:",
                   err=True)
        for shown, reason in dict.fromkeys(report.skipped):
            click.echo(f"  {shown}: {reason}", err=True)
    _warn_conflicts(obj.library.labels.conflicts(label, ids=report.ids))


@labels.command("list")
@click.option("--label", default=None, help="Only this label.")
@filter_options
@moment_options
@click.pass_obj
def labels_list(obj, label: str | None, *, fmt: str, out: Path | None, out_dir: Path | None, use_timecode: bool,
                overwrite: bool, where) -> None:
    """Every label, or export them (every format re-imports with 'labels import'; edl and markers,
    for video editors, come back at their whole frames); labels of files gone from disk are kept
    and marked."""
    items = obj.library.labels.list(label, where=where)
    if use_timecode and fmt in ("csv", "json") and out_dir is None:
        raise click.UsageError(f"--timecode changes the moments a {fmt} export lists per file (--out-dir); the "
                               f"labels' own {fmt} keeps seconds so that 'labels import' reads it back")
    if fmt == "table" and out is None and out_dir is None:
        moments = obj.library.labels.moments(items)
        show = (lambda m, s: timecode(s, m.fps)) if use_timecode else (lambda m, s: s)
        echo_table(["id", "label", "kind", "sign", "start", "end", "path", "note"],
                   [[i.id, i.label, i.kind, "-" if not i.positive else "+", show(m, i.start), show(m, i.end),
                     i.media.path, "" if i.media.status == "ok" else f"file {i.media.status}"]
                    for i, m in zip(items, moments)])
    elif fmt == "csv" and out_dir is None:
        emit_text(obj, obj.library.labels.to_csv(items), out=out)
    elif fmt == "json" and out_dir is None:
        emit_text(obj, json_text([item.as_json() for item in items]), out=out)
    else:  # the moments formats, and the rules every command that lists moments keeps (no table in a file)
        emit(obj, obj.library.labels.moments(items), fmt=fmt, out=out, out_dir=out_dir, use_timecode=use_timecode,
             overwrite=overwrite)


def json_text(data) -> str:
    import json

    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@writes
@labels.command("remove")
@click.argument("ids", nargs=-1, type=int, required=True)
@click.pass_obj
def labels_remove(obj, ids: tuple[int, ...]) -> None:
    """Remove labels by the ids 'labels list' shows."""
    removed = obj.library.labels.remove(ids)
    if not obj.quiet:
        click.echo(f"removed {removed} label(s)")


@writes
@click.command("train")
@click.argument("name")
@click.option("--label", default=None, help="Label to learn (default: NAME).")
@click.option("-m", "--model", "set_name", default=None, help="Embedding set or model (needed when the store has several).")
@click.option("--classifier", "kind", type=click.Choice(options.CLASSIFIER_KINDS), default="logreg", show_default=True)
@click.option("--normalize", type=click.Choice(options.NORMALIZATIONS), default="auto", show_default=True,
              help="z-score features per media file (as the original scan), over the whole set, or not at all; "
                   "auto: per file for neural models, over the set for LOGMEL.")
@click.option("--tolerance", type=float, default=options.TOLERANCE, show_default=True,
              help="Seconds around a marker whose windows count as that label.")
@click.option("--neg-margin", type=float, default=options.NEG_MARGIN, show_default=True,
              help="Automatic negatives are drawn only this far (seconds) from every label.")
@click.option("--negatives", type=click.Choice(options.NEGATIVE_SOURCES), default="both", show_default=True,
              help="Where automatic negatives come from: the labelled files (the original rule), other indexed "
                   "files, or both (the whole library is the background the sound is told from).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=options.DEFAULT_THRESHOLD, show_default=True,
              help="The threshold to report cross-validated precision and recall at, and the detector's own "
                   "(rescore --all).")
@click.option("--precision", "precision", type=click.FloatRange(0, 1), default=None,
              help="Instead of --threshold: the lowest threshold whose cross-validated precision reaches this.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def train(obj, name: str, *, label: str | None, set_name: str | None, kind: str, normalize: str, tolerance: float,
          neg_margin: float, negatives: str, threshold: float, precision: float | None, fmt: str) -> None:
    """Train a calibrated detector NAME from labels, on stored vectors only (seconds, no model).

    Cross-validation folds are grouped by file (or by stretch of overlapping windows),
    so the figures are what rescoring will show.  A detector that should not be trusted
    yet is still saved, with a warning saying why and what to label next.
    """
    check_label_name(label or name)  # the label to learn, held to the rule every label name meets
    progress = None if obj.quiet or not sys.stderr.isatty() else (
        lambda text: click.echo(f"\r{name}: {text}...".ljust(60), err=True, nl=False))
    if precision is not None and given("threshold"):
        raise click.UsageError("--precision chooses the threshold; give it or --threshold, not both")
    detector = obj.library.train(name, label=label, model=set_name, classifier=kind, normalize=normalize,
                                 tolerance=tolerance, neg_margin=neg_margin, negatives=negatives,
                                 threshold=threshold, precision=precision, progress=progress)
    if progress:
        click.echo("\r".ljust(61) + "\r", err=True, nl=False)
    report, m = detector.summary(), detector.metrics
    if fmt == "json":
        echo_json(report)
    else:
        click.echo(f"{name} v{report['version']} ({kind}, {m['calibration']} calibration, {report['set']}): "
                   f"{m['positives']} positive windows in {m['positive_regions']} region(s) / {m['negatives']} "
                   f"negative ({m['hard_negatives']} labelled, {m['auto_negatives']} from the labelled files, "
                   f"{m['library_negatives']} from other files); {m['seconds']:.2f} s")
        click.echo(f"cross-validated over {m['folds']} folds grouped by {m['grouping']}: AP {m['cv_ap']:.3f}, "
                   f"ROC AUC {m['cv_roc_auc']:.3f}; at threshold {m['threshold']:g}: precision "
                   f"{_share(m['cv_precision'])}, recall {_share(m['cv_recall'])}")
        reached = {p: t for p, t in (m.get("thresholds") or {}).items() if t is not None}
        if reached:
            click.echo("thresholds for precision " + ", ".join(f"{p}: {t:.3f}" for p, t in reached.items())
                       + f" (rescore {name} --precision P)")
    _warn_conflicts(obj.library.labels.conflicts(report["label"]))
    for reason in m.get("warnings", []):
        click.echo(f"warning: {name} is not reliable yet: {reason}", err=True)
    if not m.get("reliable", True):
        click.echo(f"label more: 'audioscan suggest {name}' lists the moments it is least sure about", err=True)


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@click.command("suggest")
@click.argument("names", nargs=-1, required=True)
@click.option("-n", "count", type=click.IntRange(1), default=20, show_default=True)
@filter_options
@moment_options
@click.pass_obj
def suggest_command(obj, names: tuple[str, ...], *, count: int, fmt: str, out: Path | None, out_dir: Path | None,
                    use_timecode: bool, overwrite: bool, where) -> None:
    """Unlabelled moments detector NAME is least sure about: label these next.  Several NAMES, as
    rescore takes them (one label's detectors in different sets), are asked together."""
    detector = obj.library.detector(names)
    moments = obj.library.moments(detector.suggest(count, where), label=detector.classifier.label)
    emit(obj, moments, fmt=fmt, out=out, out_dir=out_dir, use_timecode=use_timecode, overwrite=overwrite)


@click.group("detectors", invoke_without_command=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def detectors_command(ctx, fmt: str) -> None:
    """Trained detectors and their kept versions, with cross-validated scores."""
    if ctx.invoked_subcommand is not None:
        return
    items = ctx.obj.library.detectors()
    if fmt == "json":
        echo_json(items)
    else:
        echo_table(["name", "version", "label", "set", "classifier", "cv_ap", "cv_roc_auc", "reliable", "created"],
                   [[i["name"], i["version"], i["label"], i["set"], i["classifier"], i["cv_ap"], i["cv_roc_auc"],
                     {True: "yes", False: "no"}.get(i.get("reliable"), ""), i["created"][:19]] for i in items])


@writes
@detectors_command.command("remove")
@click.argument("name")
@click.option("--version", type=int, default=None, help="Only this version (default: every version).")
@click.option("--yes", is_flag=True, help="Do not ask (needed when not on a terminal).")
@click.pass_obj
def detectors_remove(obj, name: str, *, version: int | None, yes: bool) -> None:
    """Delete detector NAME (or one --version of it)."""
    confirm(f"delete detector {name}" + (f" version {version}" if version else " (every version)") + "?", yes)
    count = obj.library.remove_detector(name, version=version)
    if not obj.quiet:
        click.echo(f"deleted {count} version(s) of {name}")


# The name earlier releases used, kept so scripts go on working (hidden from the help).
classifiers_alias = click.Group("classifiers", commands=detectors_command.commands, params=detectors_command.params,
                                callback=detectors_command.callback, invoke_without_command=True, hidden=True,
                                help="The same as 'audioscan detectors'.")

COMMANDS = [search, labels, train, rescore, suggest_command, detectors_command, classifiers_alias]
