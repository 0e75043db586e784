"""``audioscan rescore``: detections of a detector over the library, and what else it answers from the
same scores - a summary over time, a review sample and its estimate, every detector at once."""

from __future__ import annotations

from pathlib import Path

import click

from audioscan.api import options
from audioscan.api.moments import PERIODS
from audioscan.cli.context import given
from audioscan.cli.many import emit_many
from audioscan.cli.moments import emit, filter_options, moment_options
from audioscan.cli.review import emit_estimate, emit_sample, refuse
from audioscan.cli.summary import emit_summary


@click.command("rescore")
@click.argument("names", nargs=-1)
@click.option("--all", "every", is_flag=True,
              help="Every detector (or the NAMES given) over one set's windows in one run, each at the threshold it "
                   "was trained with: a table per window of their probabilities, or with --top N each window's N "
                   "best labels.")
@click.option("--version", type=int, default=None, help="Detector version (default: newest).")
@click.option("--threshold", type=click.FloatRange(0, 1), default=options.DEFAULT_THRESHOLD, show_default=True)
@click.option("--precision", type=click.FloatRange(0, 1), default=None,
              help="Instead of --threshold: the lowest threshold whose cross-validated precision reaches this.")
@click.option("--per-window", is_flag=True, help="Every window's score (path, start, end, score), by file and time.")
@click.option("--summary", type=click.Choice(PERIODS), default=None,
              help="Count the detections per hour, day (the recording's own clock) or site, with the hours of "
                   "audio scored in each (table, csv or json).")
@click.option("--top", type=click.IntRange(1), default=None,
              help="Only the N best detections (with --all: each window's N best labels).")
@click.option("--sample", type=click.IntRange(1), default=None,
              help="A review sample: N detections for a person to judge (a CSV with an empty verdict column).")
@click.option("--by-score", is_flag=True, help="With --sample or --estimate: spread over four score bins, each judged "
              "apart (precision rises with the score).")
@click.option("--estimate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The judged sample: precision per score bin and the detections corrected for it.")
@click.option("--refine", is_flag=True,
              help="Place each sound finely: embed each result's span again every quarter hop (costs model time).")
@filter_options
@moment_options
@click.pass_obj
def rescore(obj, names: tuple[str, ...], *, version: int | None, threshold: float, precision: float | None,
            per_window: bool, top: int | None, refine: bool, fmt: str, out: Path | None, out_dir: Path | None,
            use_timecode: bool, overwrite: bool, where, summary: str | None, sample: int | None, by_score: bool,
            estimate: Path | None, every: bool) -> None:
    """Score every stored window with detector NAME and list the detections, best first.

    A detection is a sound whose best window scores at least --threshold, with that
    window's score: the windows around it down to the valleys on both sides (a steady
    sound with no valley is one detection however long), one detection for one event;
    two sounds are two detections when the best window of the lesser does not hold the
    greater's peak.  So --threshold 0 lists every candidate moment of the library, ranked, never
    overlapping.  Detections are
    ordered by the classifier's decision value (the score shown is its calibrated
    probability, which can be equal for many); each has a peak, onset and offset.
    Several NAMES, trained on one label in different embedding sets (train --model),
    are combined on the first one's windows: the mean of their probabilities, ranked
    by the mean of their standardised decision values.
    """
    if per_window and refine:
        raise click.UsageError("--refine places detections; --per-window lists windows as stored")
    if every:
        emit_many(obj, names, top=top, where=where, fmt=fmt, out=out,
                  refused={"--version": version is not None, "--threshold": given("threshold"),
                   "--precision": precision is not None, "--per-window": per_window, "--refine": refine,
                   "--summary": summary is not None, "--sample": sample is not None, "--estimate": estimate is not None,
                   "--by-score": by_score, "--out-dir": out_dir is not None, "--timecode": use_timecode})
        return
    if not names:
        raise click.UsageError("give the detector NAME to rescore with (or --all for every detector)")
    detector = obj.library.detector(names, version=version)
    if sample is not None or estimate is not None or by_score:
        if by_score and sample is None and estimate is None:
            raise click.UsageError("--by-score goes with --sample or --estimate")
        if sample is not None and estimate is not None:
            raise click.UsageError("--sample draws the rows to judge and --estimate reads them judged: one at a time")
        flag = "--sample" if sample is not None else "--estimate"
        refuse(flag, {"--per-window": per_window, "--top": top is not None, "--refine": refine,
                      "--summary": summary is not None, "--out-dir": out_dir is not None, "--timecode": use_timecode})
        if estimate is not None:
            emit_estimate(obj, detector, verdicts=estimate, by_score=by_score, threshold=threshold,
                          precision=precision, where=where, fmt=fmt, out=out)
        elif sample is not None:
            emit_sample(obj, detector, size=sample, by_score=by_score, threshold=threshold, precision=precision,
                        where=where, fmt=fmt, out=out)
        return
    if summary is not None:
        emit_summary(obj, detector, by=summary, threshold=threshold, precision=precision, where=where, fmt=fmt, out=out,
                     refused={"--per-window": per_window, "--top": top is not None, "--refine": refine,
                      "--out-dir": out_dir is not None, "--timecode": use_timecode})
        return
    found = detector.windows(where) if per_window else detector.rescore(
        threshold, precision=precision, top=top, refine=refine, where=where)
    moments = obj.library.moments(found[:top] if top else found, label=detector.classifier.label)
    emit(obj, moments, fmt=fmt, out=out, out_dir=out_dir, use_timecode=use_timecode, overwrite=overwrite)
