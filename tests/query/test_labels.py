import json

import pytest

from audioscan.indexer.store.store import Store
from audioscan.query.errors import QueryError
from audioscan.query.label_files import parse_audacity, parse_csv
from audioscan.query.labels import all_media, resolve_media
from tests.query.helpers import cli


def test_paths_absolute_relative_to_cwd_or_root_or_by_unique_name(world, monkeypatch):
    with Store.open(world / "store") as store:
        media = all_media(store)
        other = next(m for m in media if m.rel == "sub/other.flac")
        assert resolve_media(store, str(world / "media" / "sub" / "other.flac")) == other
        monkeypatch.chdir(world / "media")
        assert resolve_media(store, "sub/other.flac") == other
        monkeypatch.chdir(world)
        assert resolve_media(store, "other.flac") == other
        with pytest.raises(QueryError, match="not an indexed media file"):
            resolve_media(store, "nothing.wav")


def test_add_list_and_refuse_times_outside_the_file(world):
    assert cli(world, "labels", "add", "long.mkv", "20", "30", "siren").exit_code == 0
    assert cli(world, "labels", "add", "long.mkv", "205", "siren", "--marker").exit_code == 0
    assert cli(world, "labels", "add", "knock.mp3", "0", "5", "siren", "--negative").exit_code == 0
    outside = cli(world, "labels", "add", "knock.mp3", "50", "55", "siren")
    assert outside.exit_code != 0 and "outside knock.mp3, which lasts" in outside.stderr
    backwards = cli(world, "labels", "add", "knock.mp3", "5", "2", "siren")
    assert backwards.exit_code != 0 and "end after its start" in backwards.stderr
    items = json.loads(cli(world, "labels", "list", "--format", "json").stdout)
    assert [(i["kind"], i["negative"], i["start"], i["end"]) for i in items] == [
        ("range", True, 0.0, 5.0), ("range", False, 20.0, 30.0), ("marker", False, 205.0, 205.0)]


def test_csv_and_audacity_import_and_export_round_trip(world):
    (world / "labels.csv").write_text("path,start,end,label,negative\n"
                                      f"{world / 'media' / 'long.mkv'},20,30,siren,0\n"
                                      "sub/other.flac,35,,siren,\n"
                                      "knock.mp3,10,20,siren,1\n")
    assert cli(world, "labels", "import", str(world / "labels.csv")).exit_code == 0
    (world / "track.txt").write_text("200.5\t209.0\tsiren\n\\t1000\t2000\n250\t250\tsiren\n")
    assert cli(world, "labels", "import", str(world / "track.txt"), "--media", "long.mkv").exit_code == 0
    exported = cli(world, "labels", "list", "--format", "csv").stdout
    rows = parse_csv(exported, "export", label=None, negative=False)
    assert len(rows) == 5
    assert ("siren", 35.0, None, True) in [(r[1], r[2], r[3], r[4]) for r in rows]  # the marker
    assert any(r[2] == 10.0 and r[4] is False for r in rows)  # the negative
    assert cli(world, "labels", "list", "--format", "audacity", "--out-dir", str(world / "tracks")).exit_code == 0
    track = (world / "tracks" / "long.txt").read_text()
    assert "20.000000\t30.000000\tsiren\n" in track and "250.000000\t250.000000\tsiren" in track
    assert (world / "tracks" / "knock.txt").read_text() == "10.000000\t20.000000\tsiren (negative)\n"
    cli(world, "labels", "import", str(world / "tracks" / "knock.txt"), "--media", "knock.mp3")  # round trip
    with Store.open(world / "store") as store:
        knock = [i for i in store.labels() if i.media.rel == "knock.mp3"]
    # Importing what is already there adds nothing: the round trip is exact, not doubled.
    assert [(i.label, i.start, i.end, i.positive) for i in knock] == [("siren", 10.0, 20.0, False)]


def test_rejected_detections_import_as_negatives():
    text = "path,start,end,score,label\n/x/a.mkv,1.000,9.000,0.8123,siren\n"
    assert [row[:5] for row in parse_csv(text, "rejected.csv", label=None, negative=True)] == [
        ("/x/a.mkv", "siren", 1.0, 9.0, False)]


def test_audacity_lines_parse_with_frequency_lines_skipped():
    rows = parse_audacity("1.5\t2.5\tgag\n\\t100.0\t200.0\n3\t3\tgag\n4\t5\tgag (negative)\n"
                          "6\t7\tgag 0.86\n8\t9\ttake 2\n", "t.txt", label=None, negative=False)
    assert [row[1:5] for row in rows] == [("gag", 1.5, 2.5, True), ("gag", 3.0, None, True), ("gag", 4.0, 5.0, False),
                                          ("gag", 6.0, 7.0, True), ("take 2", 8.0, 9.0, True)]


def test_labels_of_a_deleted_file_are_kept_and_reported(world):
    cli(world, "labels", "add", "knock.mp3", "10", "20", "siren")
    (world / "media" / "knock.mp3").unlink()
    assert cli(world, "index", "build", str(world / "media")).exit_code == 0
    with Store.open(world / "store") as store:
        (item,) = store.labels()
    assert item.media.status == "missing"
    assert "file missing" in cli(world, "labels", "list").stdout


def test_labels_and_reads_work_while_a_build_holds_the_writer_lock(world):
    with Store.open(world / "store", write=True):  # as if 'index build' were running
        assert cli(world, "labels", "add", "knock.mp3", "10", "20", "knock").exit_code == 0
        assert cli(world, "index", "status").exit_code == 0
        refused = cli(world, "index", "build", str(world / "media"))
        assert refused.exit_code != 0 and "is being written by process" in refused.stderr
    with Store.open(world / "store") as store:
        assert [i.label for i in store.labels()] == ["knock"]
