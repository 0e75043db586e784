"""Every CSV the tool writes keeps its numbers as numbers and its names whole.

The spreadsheet formula guard (a ``'`` before a cell starting ``= + - @``) is for text; a
negative score is a number, and a guard would turn it into text no spreadsheet sums.
Clip file names keep where the clip comes from, when, and its label, made safe.
"""

from __future__ import annotations

import csv
import io

from audioscan.query import formats
from audioscan.query.clips import MANIFEST, export_clips
from audioscan.query.labels import to_csv
from audioscan.query.moments import Moment
from tests.conftest import tone_file


def _numeric_cells(text: str, columns: list[str]) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [row[column] for row in rows for column in columns if row[column]]


def _all_numbers(cells: list[str]) -> bool:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return bool(cells)


def test_negative_scores_and_times_stay_numbers_in_every_csv_written(tmp_path):
    source = tone_file(tmp_path / "a.wav", 3)
    moment = Moment(str(source), 0.5, end=2.0, score=-0.5359, label="-gag", decision=-1.25)
    report = export_clips([moment], tmp_path / "clips")
    manifest = (tmp_path / "clips" / MANIFEST).read_text()
    assert report.written and _all_numbers(_numeric_cells(manifest, ["start", "end", "clip_start", "score"]))
    assert "-0.5359" in _numeric_cells(manifest, ["score"])
    written = formats.render("csv", [moment])
    assert _all_numbers(_numeric_cells(written, ["start", "end", "score", "decision"]))

    class Item:  # a stored label as labels.to_csv reads it
        label, positive, start, end, kind, channel = "-1", True, 1.5, 2.5, "range", 0
        media = type("Media", (), {"path": "/m/a.wav", "site": None})()

        def clock(self) -> None:  # a file whose start is not known
            return None

    assert _all_numbers(_numeric_cells(to_csv([Item()]), ["start", "end", "negative"]))
    # Text is still guarded, and comes back as it was.
    assert formats.safe_cell("=1+2") == "'=1+2" and formats.unsafe_cell("'=1+2") == "=1+2"
    assert formats.unsafe_cell(formats.safe_cell("-0.5359")) == "-0.5359"


def test_clip_names_keep_source_time_and_the_whole_label(tmp_path):
    source = tone_file(tmp_path / "take.wav", 3)
    labels = ["dog/bark", "<b>bold</b>", "a\\b:c"]
    report = export_clips([Moment(str(source), 1.0, end=2.0, score=None, label=label) for label in labels],
                          tmp_path / "clips")
    names = sorted(path.name for path in report.written)
    assert names == sorted(["take_00-00-01.000_a_b_c.wav", "take_00-00-01.000_dog_bark.wav",
                            "take_00-00-01.000__b_bold__b_.wav"])
    assert all(path.parent == tmp_path / "clips" for path in report.written)
