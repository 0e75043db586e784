"""``labels import`` at its edges: a negative column read strictly, every bad row named as
``file:line: what``, a dry run (``--check``) that stores nothing, and warnings that say what the
import itself brought, once, with a count."""

from __future__ import annotations

import json

import pytest

from audioscan.errors import UserError
from audioscan.indexer.store.store import Store
from audioscan.query.label_files import parse_csv
from tests.query.helpers import cli


def _negative(cell: str) -> bool:
    (row,) = parse_csv(f"path,start,end,label,negative\na.wav,1,2,gag,{cell}\n", "x.csv", label=None, negative=False)
    return not row.positive


@pytest.mark.parametrize("cell, negative", [("true", True), ("False", False), ("yes", True), ("no", False),
                                            ("1", True), ("0", False), ("1.0", True), ("0.0", False),
                                            ("negative", True), ("positive", False), ("", False)])
def test_the_negative_column_reads_every_spelling_of_yes_and_no(cell, negative):
    assert _negative(cell) is negative


@pytest.mark.parametrize("cell", ["-", "+", "maybe", "2", "-1", "0.5", "y"])
def test_anything_else_in_the_negative_column_is_a_bad_row_not_a_positive(cell):
    with pytest.raises(UserError, match="x.csv:2: .* in the negative column"):
        _negative(cell)


def _stored(world) -> list:
    with Store.open(world / "store") as store:
        return store.labels()


def test_every_bad_row_is_named_by_file_and_line_and_nothing_is_stored(world):
    rows = ["path,start,end,label", "long.mkv,20,30,siren"]
    rows += [f"knock.mp3,{5 + i},{2 + i},siren" for i in range(8)]  # ends before their starts
    rows += ["knock.mp3,50,55,siren", "long.mkv,900,910,siren", "long.mkv,1,2,siren", "knock.mp3,1,0.5,siren"]
    (world / "bad.csv").write_text("\n".join(rows) + "\n")
    result = cli(world, "labels", "import", str(world / "bad.csv"))
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    message = result.stderr
    assert "11 rows cannot be imported" in message
    assert all(f"bad.csv:{line}:" in message for line in range(3, 13)) and "bad.csv:14:" not in message
    assert "and 1 more" in message and "--marker" not in message and "outside knock.mp3" in message
    assert _stored(world) == []
    # Rows that cannot even be read are named the same way.
    (world / "unreadable.csv").write_text("path,start,end,label\nlong.mkv,abc,30,siren\nlong.mkv,1,zz,siren\n")
    unreadable = cli(world, "labels", "import", str(world / "unreadable.csv")).stderr
    assert "unreadable.csv:2:" in unreadable and "unreadable.csv:3:" in unreadable


def test_check_validates_everything_says_what_would_come_and_stores_nothing(world):
    (world / "good.csv").write_text("path,start,end,label,negative\nlong.mkv,20,30,siren,0\n"
                                    "long.mkv,100,110,siren,1.0\nknock.mp3,10,,knock,\n")
    checked = cli(world, "labels", "import", str(world / "good.csv"), "--check")
    assert checked.exit_code == 0, checked.stderr
    assert "would import 3 label(s)" in checked.stdout and "'siren' 1 positive, 1 negative" in checked.stdout
    assert _stored(world) == []
    (world / "bad.csv").write_text("path,start,end,label\nlong.mkv,20,30,siren\nknock.mp3,50,55,siren\n")
    refused = cli(world, "labels", "import", str(world / "bad.csv"), "--check")
    assert refused.exit_code == 1 and "bad.csv:3:" in refused.stderr and _stored(world) == []
    assert cli(world, "labels", "import", str(world / "good.csv")).exit_code == 0
    again = cli(world, "labels", "import", str(world / "good.csv"), "--check")
    assert "would import 0 label(s) (3 already there)" in again.stdout


def test_overlap_warnings_are_one_line_with_a_count_and_only_for_what_was_added(world):
    rows = ["path,start,end,label,negative"] + [f"long.mkv,{20 + i},{21 + i},siren,0" for i in range(6)]
    rows += ["long.mkv,20,30,siren,1"]  # one negative over six positives: six contradicting pairs
    (world / "mixed.csv").write_text("\n".join(rows) + "\n")
    first = cli(world, "labels", "import", str(world / "mixed.csv"))
    warnings = [line for line in first.stderr.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and "and 5 more" in warnings[0], first.stderr
    (world / "header.csv").write_text("path,start,end,label\n")
    assert "warning" not in cli(world, "labels", "import", str(world / "header.csv")).stderr
    (world / "elsewhere.csv").write_text("path,start,end,label\nknock.mp3,1,2,siren\n")
    assert "warning" not in cli(world, "labels", "import", str(world / "elsewhere.csv")).stderr


def test_an_edl_or_markers_file_of_a_search_imports_as_labels_of_its_clips(world, tmp_path):
    """What an editor keeps of a search (an EDL or markers CSV: clip names, frames, a score in the note)
    comes back as labels of those clips under the name given, at the frames written; a clip name no
    indexed file has is a bad row named by its line."""
    from tests.query.helpers import cli

    for fmt in ("edl", "markers"):
        written = tmp_path / f"hits.{fmt}"
        searched = cli(world, "search", "--from", "long.mkv", "--at", "20", "-k", "3", "--format", fmt,
                       "--out", str(written))
        assert searched.exit_code == 0, searched.stderr
        result = cli(world, "labels", "import", str(written), "--label", f"siren-{fmt}")
        assert result.exit_code == 0, result.stderr
        listed = json.loads(cli(world, "labels", "list", "--label", f"siren-{fmt}", "--format", "json").stdout)
        assert len(listed) == 3 and all(item["label"] == f"siren-{fmt}" for item in listed)
        text = written.read_text().replace("long.mkv", "nowhere.mkv", 1)
        (tmp_path / f"bad.{fmt}").write_text(text)
        refused = cli(world, "labels", "import", str(tmp_path / f"bad.{fmt}"), "--label", "x")
        assert refused.exit_code == 1 and "nowhere.mkv" in refused.stderr, refused.output
