"""Writing hits and detections where people use them: tables, CSV, JSON, Audacity label tracks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from audioscan.query.search import Hit

FORMATS = ("table", "csv", "json", "audacity")


def to_csv(hits: list[Hit], label: str | None = None) -> str:
    """``path,start,end,score[,label]``; ``labels import`` reads it back (e.g. ``--negative``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "start", "end", "score"] + (["label"] if label else []))
    for hit in hits:
        writer.writerow([hit.path, f"{hit.start:.3f}", f"{hit.end:.3f}", f"{hit.score:.4f}"] + ([label] if label else []))
    return buffer.getvalue()


def to_json(hits: list[Hit]) -> str:
    return json.dumps([hit.as_json() for hit in hits], indent=2, ensure_ascii=False)


def audacity_track(rows: list[tuple[float, float, str]]) -> str:
    """An Audacity label track: ``start<TAB>end<TAB>text`` per line, seconds with 6 decimals."""
    return "".join(f"{start:.6f}\t{end:.6f}\t{text}\n" for start, end, text in sorted(rows))


def write_audacity(rows: list[tuple[str, float, float, str]], out_dir: Path) -> list[Path]:
    """One label track per media file from (path, start, end, text) rows, named after the file
    (``<name>.txt``, or with its folder when names repeat)."""
    by_path: dict[str, list[tuple[float, float, str]]] = {}
    for path, start, end, text in rows:
        by_path.setdefault(path, []).append((start, end, text))
    stems = [Path(p).stem for p in by_path]
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, items in by_path.items():
        stem = Path(path).stem
        if stems.count(stem) > 1:
            stem = "__".join(Path(path).with_suffix("").parts[-2:])
        target = out_dir / f"{stem}.txt"
        target.write_text(audacity_track(items))
        written.append(target)
    return written
