"""``rescore NAME --sample N [--by-score]`` and ``rescore NAME --estimate FILE``: a review sample of the
detections for a person to judge, and what the judgements say about all of them (``query.review``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from audioscan.api.moments import table_csv, write_file
from audioscan.api.summaries import review_estimate, review_sample, sample_csv
from audioscan.cli.console import echo_table, emit_text


def refuse(flag: str, refused: dict[str, bool]) -> None:
    """One sentence for the options that list moments, which a review has no place for."""
    given = [name for name, present in refused.items() if present]
    if given:
        raise click.UsageError(f"{flag} reviews the detections; {', '.join(given)} go with lists of moments")


def emit_sample(obj, detector, *, size: int, by_score: bool, threshold: float, precision: float | None, where,
                fmt: str, out: Path | None) -> None:
    """The sample as CSV (to ``out``, or printed), with an empty verdict column to fill in."""
    if fmt not in ("table", "csv"):
        raise click.UsageError(f"--sample writes the CSV a person fills in (--format csv), not {fmt}")
    text = sample_csv(review_sample(detector, size, threshold=threshold, precision=precision, where=where,
                                    by_score=by_score))
    if out is None:
        click.echo(text, nl=False)
        return
    write_file(out, text)
    if not obj.quiet:
        click.echo(f"{out}: write yes or no in each verdict, then 'rescore ... --estimate {out.name}'", err=True)


def emit_estimate(obj, detector, *, verdicts: Path, by_score: bool, threshold: float, precision: float | None, where,
                  fmt: str, out: Path | None) -> None:
    """Precision per score bin and the corrected count, as a table, CSV or JSON."""
    if fmt not in ("table", "csv", "json"):
        raise click.UsageError(f"--estimate writes table, csv or json, not {fmt}")
    if fmt == "table" and out is not None:
        raise click.UsageError("--out writes a file: choose --format csv or json")
    bins = review_estimate(detector, verdicts, threshold=threshold, precision=precision, where=where, by_score=by_score)
    rows = [{"bin": item.bin.name(), "detections": item.detections, "judged": item.judged, "right": item.right,
             "precision": None if item.precision is None else round(item.precision, 4),
             **_interval_cells(item.interval()),
             "corrected": None if item.corrected is None else round(item.corrected, 2)} for item in bins]
    unjudged = sum(item.detections for item in bins if not item.judged)
    total = {"bin": "all", "detections": sum(item.detections for item in bins),
             "judged": sum(item.judged for item in bins), "right": sum(item.right for item in bins),
             "corrected": round(sum(item.corrected or 0.0 for item in bins), 2), "unjudged_detections": unjudged}
    if fmt == "table":
        echo_table(list(rows[0]), [[("" if v is None else v) for v in row.values()] for row in rows])
        click.echo(f"{total['corrected']:g} of {total['detections']} detections estimated right"
                   + (f"; {unjudged} are in bins no one judged (not counted)" if unjudged else ""))
        return
    text = (table_csv(list(rows[0]), [["" if v is None else str(v) for v in row.values()] for row in rows])
            if fmt == "csv" else json.dumps({"bins": rows, "total": total}, indent=2) + "\n")
    emit_text(obj, text, out=out)


def _interval_cells(interval: tuple[float, float] | None) -> dict[str, float | None]:
    """An estimate's precision interval as two cells (empty when too few detections were judged)."""
    low, high = (None, None) if interval is None else (round(interval[0], 4), round(interval[1], 4))
    return {"precision_low": low, "precision_high": high}
