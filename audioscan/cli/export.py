"""``audioscan export clips``: take the moments home as audio (or video) files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from audioscan.api.options import CLIP_FORMATS, DEFAULT_THRESHOLD
from audioscan.cli.console import show_progress
from audioscan.cli.context import given, writes


@click.group("export")
def export() -> None:
    """Take results home: audio clips cut from the sources."""


@writes
@export.command("clips")
@click.argument("moments_csv", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--from-search", "clips", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Cut the hits of searching this clip (repeat for several: searched by their mean).")
@click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Hits to cut with --from-search.")
@click.option("--per-file", type=click.IntRange(1), default=None, help="With --from-search: at most N hits from one file.")
@click.option("--from-rescore", "detector", default=None, help="Cut the detections of this detector.")
@click.option("--threshold", type=click.FloatRange(0, 1), default=DEFAULT_THRESHOLD, show_default=True)
@click.option("--precision", type=click.FloatRange(0, 1), default=None,
              help="With --from-rescore: the threshold that reached this cross-validated precision.")
@click.option("--top", type=click.IntRange(1), default=None, help="Only the N best.")
@click.option("--from-labels", "from_labels", is_flag=True, help="Cut the positive labels (of --label, or all).")
@click.option("--label", default=None, help="With --from-labels: only this label.")
@click.option("-m", "--model", "set_name", default=None, help="Embedding set or model (needed when the store has several).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for the clips and their clips.csv manifest.")
@click.option("--format", "fmt", type=click.Choice(CLIP_FORMATS), default="wav", show_default=True,
              help="wav keeps every sample exactly; flac stores integers (float sources as 24-bit); "
                   "mp4 keeps the picture of a video (audio-only sources become wav).")
@click.option("--length", type=click.FloatRange(0, min_open=True), default=None,
              help="Fixed-length clips centred on each moment's peak, clamped inside the file (e.g. 8).")
@click.option("--tight", is_flag=True, help="Cut each sound's estimated onset to offset instead of the whole moment.")
@click.option("--pad", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds added before and after each moment.")
@click.option("--rate", type=click.IntRange(1000, 384000), default=None,
              help="Resample (default: the source's); mp4 takes AAC's rates only (8000 to 96000).")
@click.option("--channels", type=click.IntRange(1, 2), default=None, help="1 or 2 (default: the source's).")
@click.option("--overwrite", is_flag=True, help="Replace a clips.csv in --out-dir that audioscan did not write.")
@click.pass_obj
def clips_command(obj, moments_csv: Path | None, *, clips: tuple[Path, ...], k: int, per_file: int | None,
                  detector: str | None,
                  threshold: float, precision: float | None, top: int | None, from_labels: bool, label: str | None,
                  set_name: str | None, out_dir: Path, fmt: str, length: float | None, pad: float, rate: int | None,
                  channels: int | None, overwrite: bool, tight: bool) -> None:
    """Cut moments into clips: from a CSV of path,start,end[,label], from search hits, from a
    classifier's detections, or from labels.

    Names read <source>_<hh-mm-ss.mmm>_<label>.<ext>; clips.csv in --out-dir says what each
    clip is (source,start,end,clip_start,clip_end,label,score,clip,channel). A moment of one
    channel (a set built with --channels split) is cut as that channel alone unless --channels
    says otherwise. Running it again skips the clips already there.
    """
    sources = sum(bool(x) for x in (moments_csv, clips, detector, from_labels))
    if sources != 1:
        raise click.UsageError("give one source: MOMENTS.csv, --from-search CLIP, --from-rescore NAME or --from-labels")
    _refuse_other_sources_options(click.get_current_context(), {"search": bool(clips), "rescore": bool(detector),
                                                                  "labels": from_labels})
    library = obj.library
    name = ""
    if moments_csv is not None:
        moments = library.read_moments(moments_csv)
    elif clips:
        moments = library.search(list(clips) if len(clips) > 1 else clips[0], k=k, model=set_name, per_file=per_file)
        name = "match"
    elif detector:
        found = library.detector(detector)
        moments = found.rescore(threshold, top=top, precision=precision)
        name = found.classifier.label
    else:
        moments = library.labels.moments([item for item in library.labels.list(label) if item.positive])
    moments = moments[:top] if top else moments
    bar = _Bar(len(moments)) if show_progress(obj.quiet) else None
    report = library.export_clips(moments, out_dir, format=fmt, length=length, pad=pad, rate=rate,
                                  channels=channels, label=name, progress=bar.update if bar else None,
                                  overwrite=overwrite, tight=tight)
    if bar:
        bar.close()
    for source, reason in report.failed:
        click.echo(f"  {source}: {reason}", err=True)
    if report.failed:  # part of the work done is said, and is not success
        click.echo(f"{len(report.written)} of {len(moments)} clip(s) written ({report.skipped} already there); "
                   f"{len(report.failed)} failed, listed above; manifest {report.manifest}", err=True)
        sys.exit(1)
    if not obj.quiet:
        click.echo(f"{len(report.written)} clip(s) written, {report.skipped} already there; manifest {report.manifest}")


# The options that shape one source's moments, by parameter: (the source, its flag, the option's flag).
_SOURCE_OPTIONS = {"k": ("search", "--from-search", "-k"), "per_file": ("search", "--from-search", "--per-file"),
                   "set_name": ("search", "--from-search", "--model"),
                   "threshold": ("rescore", "--from-rescore", "--threshold"),
                   "precision": ("rescore", "--from-rescore", "--precision"),
                   "label": ("labels", "--from-labels", "--label")}


def _refuse_other_sources_options(ctx: click.Context, chosen: dict[str, bool]) -> None:
    """An option of a source that was not chosen would change nothing: say so rather than cut
    clips the user believes were filtered or searched another way."""
    for param, (source, source_flag, flag) in _SOURCE_OPTIONS.items():
        if not chosen[source] and given(param, ctx):
            raise click.UsageError(f"{flag} goes with {source_flag}; leave it out with this source")


class _Bar:
    def __init__(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="clip", file=sys.stderr, dynamic_ncols=True)

    def update(self, done: int, total: int) -> None:
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()
