"""``rescore NAME --summary hour|day|site``: detections per period with the hours of audio behind each."""

from __future__ import annotations

import json
from pathlib import Path

import click

from audioscan.api.moments import table_csv
from audioscan.api.summaries import detections_over_time
from audioscan.cli.console import echo_table, emit_text

SUMMARY_FORMATS = ("table", "csv", "json")


def emit_summary(obj, detector, *, by: str, threshold: float, precision: float | None, where, fmt: str,
                 out: Path | None, refused: dict[str, bool]) -> None:
    """Count ``detector``'s detections per ``by`` and print or write them (``refused``: the options that
    list moments, which a summary has no place for, by flag)."""
    given = [flag for flag, present in refused.items() if present]
    if given:
        raise click.UsageError(f"--summary counts detections; {', '.join(given)} go with lists of moments")
    if fmt not in SUMMARY_FORMATS:
        raise click.UsageError(f"--summary writes {', '.join(SUMMARY_FORMATS)}, not {fmt}")
    if fmt == "table" and out is not None:
        raise click.UsageError("--out writes a file: choose --format csv or json")
    counts = detections_over_time(detector, by, threshold=threshold, precision=precision, where=where)
    if fmt == "table":
        echo_table([by, "detections", "hours of audio", "per hour"],
                   [[c.period, c.detections, round(c.hours, 3), round(c.detections / c.hours, 2) if c.hours else ""]
                    for c in counts])
        return
    text = (table_csv([by, "detections", "hours"], [[c.period, str(c.detections), f"{c.hours:.4f}"] for c in counts])
            if fmt == "csv" else json.dumps([{by: c.period, "detections": c.detections, "hours": round(c.hours, 4)}
                                             for c in counts], indent=2) + "\n")
    emit_text(obj, text, out=out)
