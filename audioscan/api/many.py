"""``rescore --all``: every detector (or the named ones) over one set's windows in one run, each at
its own threshold (``query.many``), as a table per window."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Sequence

from audioscan.query.errors import QueryError
from audioscan.query.filters import MomentFilter, restrict
from audioscan.query.formats import safe_cell
from audioscan.query.many import ManyScores, score_many

if TYPE_CHECKING:
    from audioscan.api.library import Library


def score_every_detector(library: "Library", names: Sequence[str] = (), *, model: str | None = None,
                         where: MomentFilter | None = None) -> tuple[ManyScores, list[str]]:
    """The newest version of each detector ``names`` gives (every detector without), over the windows
    of one set (``model``'s, or the set most of them were trained on); and the names left out
    because they were trained on another set."""
    wanted = list(dict.fromkeys(names or [row["name"] for row in library.detectors()]))
    if not wanted:
        raise QueryError("the store has no detector yet; train one first ('audioscan train NAME')")
    detectors = [library.detector(name) for name in wanted]
    sets = [detector.info.name for detector in detectors]
    chosen = library.set(model).name if model is not None else max(set(sets), key=sets.count)
    kept = [detector for detector in detectors if detector.info.name == chosen]
    if not kept:
        raise QueryError(f"none of these detectors was trained on set {chosen}; leave `model` out, or train them there")
    with library._reader() as store:
        snapshot = restrict(store.snapshot(kept[0].info, stats=True), where)
    return (score_many(snapshot, [detector.classifier for detector in kept]),
            [detector.name for detector in detectors if detector.info.name != chosen])


def many_rows(found: ManyScores, top: int | None) -> tuple[list[str], list[list[object]]]:
    """The table: path, start, end, channel (0: the mix), then each detector's probability, or the ``top``
    best labels (with their probabilities) of each window some detector fires on."""
    rows = found.fired()
    if top is None:
        header = ["path", "start", "end", "channel", *[column.name for column in found.columns]]
        return header, [[found.paths[r], float(found.starts[r]), float(found.ends[r]), int(found.channels[r]),
                         *[round(float(s), 4) for s in found.scores[r]]] for r in rows]
    header = ["path", "start", "end", "channel"] + [f"{what}_{k}" for k in range(1, top + 1)
                                                    for what in ("label", "score")]
    table = []
    for r in rows:
        labels = found.top_labels(int(r), top)
        cells: list[object] = [cell for label, score in labels for cell in (label, round(score, 4))]
        table.append([found.paths[r], float(found.starts[r]), float(found.ends[r]), int(found.channels[r]), *cells,
                      *([""] * (2 * top - len(cells)))])
    return header, table


def many_text(header: list[str], rows: list[list[object]], *, fmt: str) -> str:
    """The table as CSV (cells guarded against spreadsheet formulas) or a JSON list of objects."""
    if fmt == "json":
        return json.dumps([dict(zip(header, row)) for row in rows], indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[safe_cell(cell) if isinstance(cell, str) else repr(cell) if isinstance(cell, float)
                       else cell for cell in row] for row in rows])
    return buffer.getvalue()
