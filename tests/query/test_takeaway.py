"""Take it away: clips cut sample for sample, Raven/Audacity/EDL/markers files, timecodes, every set current."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from audioscan.indexer.media.cut import read_span
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.store.store import Store
from audioscan.query.export import OWNED_RECORD
from audioscan.query.timecode import parse_time, parse_timecode, timecode
from tests.query.helpers import cli, label_sirens


@pytest.mark.parametrize("name,rate,video", [("a.wav", 44_100, False), ("b.mp3", 44_100, False),
                                             ("c.mp4", 48_000, False), ("d.mp4", 48_000, True),
                                             ("e.mkv", 48_000, False)])
def test_a_clip_holds_exactly_the_sources_samples(tmp_path, name, rate, video):
    audio = scene(20, rate, background="noise", events=[("siren", 2, 15)], seed=1)
    source = write_media(tmp_path / "src" / name, np.stack([audio, audio * 0.5]), rate=rate, video=video)
    (tmp_path / "m.csv").write_text(f"path,start,end,label\n{source},7.3,11.9,siren\n")
    store = tmp_path / "store"
    result = cli(tmp_path, "--store", str(store), "export", "clips", str(tmp_path / "m.csv"), "--out-dir",
                 str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    clip = tmp_path / "out" / f"{source.stem}_00-00-07.300_siren.wav"
    whole = read_span(source, 0, end=100)
    cut = read_span(clip, 0, end=100)
    a, b = round(7.3 * whole.rate), round(11.9 * whole.rate)
    assert cut.rate == whole.rate and cut.samples.shape[0] == 2
    assert np.array_equal(cut.samples, whole.samples[:, a:b])


def test_clips_from_detections_fixed_length_manifest_and_rerun(world):
    label_sirens(world)
    assert cli(world, "train", "siren").exit_code == 0
    out = world / "clips"
    first = cli(world, "export", "clips", "--from-rescore", "siren", "--threshold", "0", "--top", "3",
                "--length", "8", "--out-dir", str(out))
    assert first.exit_code == 0 and "3 clip(s) written" in first.stdout
    rows = list(csv.DictReader(io.StringIO((out / "clips.csv").read_text())))
    assert list(rows[0]) == ["source", "start", "end", "clip_start", "clip_end", "label", "score", "clip",
                            "channel"]
    assert len(rows) == 3 and all(re.fullmatch(r".+_\d\d-\d\d-\d\d\.\d{3}_siren\.wav", r["clip"]) for r in rows)
    for row in rows:
        assert abs(float(row["clip_end"]) - float(row["clip_start"]) - 8) < 1e-6
        assert (out / row["clip"]).is_file() and float(row["clip_start"]) >= 0
    again = cli(world, "export", "clips", "--from-rescore", "siren", "--threshold", "0", "--top", "3",
                "--length", "8", "--out-dir", str(out))
    assert "0 clip(s) written, 3 already there" in again.stdout
    labels = cli(world, "export", "clips", "--from-labels", "--label", "siren", "--pad", "1", "--format", "flac",
                 "--out-dir", str(world / "labelled"))
    assert labels.exit_code == 0 and len(list((world / "labelled").glob("*.flac"))) == 2  # positives only


def test_raven_and_audacity_files_round_trip(world):
    label_sirens(world)
    raven = world / "selections.txt"
    assert cli(world, "labels", "list", "--format", "raven", "--out", str(raven)).exit_code == 0
    lines = raven.read_text().splitlines()
    assert lines[0].split("\t")[:7] == ["Selection", "View", "Channel", "Begin Time (s)", "End Time (s)",
                                         "Low Freq (Hz)", "High Freq (Hz)"]
    assert "Begin File" in lines[0] and len(lines) == 4
    with Store.open(world / "store", annotate=True) as store:
        before = sorted((i.media.rel, i.start, i.end, i.positive) for i in store.labels())
        store.remove_labels([i.id for i in store.labels()])
    assert cli(world, "labels", "import", str(raven)).exit_code == 0
    with Store.open(world / "store") as store:
        assert sorted((i.media.rel, i.start, i.end, i.positive) for i in store.labels()) == before
    tracks = world / "tracks"
    assert cli(world, "labels", "list", "--format", "audacity", "--out-dir", str(tracks)).exit_code == 0
    assert cli(world, "labels", "import", str(tracks / "long.txt"), "--media", "long.mkv").stdout.startswith(
        "imported 0")  # the same labels: nothing new


def test_edl_and_markers_carry_timecodes_that_parse_back(world):
    label_sirens(world)
    cli(world, "train", "siren")
    found = json.loads(cli(world, "rescore", "siren", "--threshold", "0", "--top", "4", "--format", "json").stdout)
    edl = cli(world, "rescore", "siren", "--threshold", "0", "--top", "4", "--format", "edl").stdout
    assert edl.startswith("TITLE: ") and "FCM: NON-DROP FRAME" in edl
    events = re.findall(r"^(\d{3})\s+AX\s+AA/V\s+C\s+(\S+) (\S+) (\S+) (\S+)$", edl, re.M)
    assert [e[0] for e in events] == ["001", "002", "003", "004"]
    for (_, src_in, src_out, rec_in, rec_out), hit in zip(events, found):
        assert abs(parse_timecode(src_in, 25) - hit["start"]) <= 0.04  # audio files: 25 fps
        assert abs(parse_timecode(src_out, 25) - hit["end"]) <= 0.04
        assert parse_timecode(rec_out, 25) - parse_timecode(rec_in, 25) == pytest.approx(
            parse_timecode(src_out, 25) - parse_timecode(src_in, 25))
    assert edl.count("* FROM CLIP NAME: ") == 4
    markers = list(csv.reader(io.StringIO(cli(world, "rescore", "siren", "--format", "markers").stdout)))
    assert markers[0] == ["Marker Name", "Description", "In", "Out", "Duration", "Marker Type", "File"]
    ndjson = cli(world, "rescore", "siren", "--threshold", "0", "--top", "2", "--format", "ndjson").stdout
    assert [json.loads(line)["path"] for line in ndjson.splitlines()] == [h["path"] for h in found[:2]]
    per_file = cli(world, "rescore", "siren", "--format", "raven", "--out-dir", str(world / "raven"))
    assert per_file.exit_code == 0 and all(p.suffix == ".txt" for p in (world / "raven").iterdir()
                                           if p.name != OWNED_RECORD)  # the record of what audioscan wrote


def test_video_frame_rates_are_stored_and_used(tmp_path):
    media = tmp_path / "media"
    write_media(media / "v.mp4", scene(30, 48_000, background="noise", events=[("siren", 2, 8)], seed=2), rate=48_000,
                video=True)
    store = tmp_path / "store"
    assert cli(tmp_path, "--store", str(store), "index", "build", str(media)).exit_code == 0
    with Store.open(store) as opened:
        assert next(iter(opened.media().values())).fps == 5.0
    edl = cli(tmp_path, "--store", str(store), "search", "--from", "v.mp4", "--at", "4", "-k", "1", "--format",
              "edl").stdout
    assert re.search(r"\d\d:\d\d:\d\d:0[0-4] ", edl)  # frames counted at the video's 5 fps


def test_times_are_typed_as_people_write_them(world):
    assert parse_time("754.5") == 754.5 and parse_time("12:34.5") == 754.5 and parse_time("1:02:03.250") == 3723.25
    assert timecode(3723.48, 25) == "01:02:03:12" and parse_timecode("01:02:03:12", 25) == pytest.approx(3723.48)
    assert cli(world, "labels", "add", "long.mkv", "0:20", "0:30.0", "siren").exit_code == 0
    bad = cli(world, "labels", "add", "long.mkv", "0:75", "1:30", "siren")
    assert bad.exit_code == 1 and "59" in bad.stderr


def test_one_plain_build_updates_every_set(tmp_path):
    media = tmp_path / "media"
    write_media(media / "a.wav", scene(12, 16_000, background="noise", events=[("siren", 2, 8)], seed=3), rate=16_000)
    store = tmp_path / "store"
    cli(tmp_path, "--store", str(store), "index", "build", str(media))
    cli(tmp_path, "--store", str(store), "index", "build", str(media), "--window", "4", "--hop", "2")
    write_media(media / "b.flac", scene(9, 16_000, background="noise", events=[("knock", 2, 8)], seed=4), rate=16_000)
    status = json.loads(cli(tmp_path, "--store", str(store), "index", "status", "--format", "json").stdout)
    assert sorted(s["behind"] for s in status["sets"]) == [0, 0]  # b.flac is not indexed yet at all
    report = json.loads(cli(tmp_path, "--store", str(store), "index", "build", str(media), "--format", "json").stdout)
    assert report["files_indexed"] == 1
    status = json.loads(cli(tmp_path, "--store", str(store), "index", "status", "--format", "json").stdout)
    assert len(status["sets"]) == 2 and all(s["behind"] == 0 for s in status["sets"])
    assert cli(tmp_path, "--store", str(store), "index", "check").exit_code == 0


def test_single_files_globs_and_housekeeping(tmp_path):
    media = tmp_path / "media"
    for name, seed in (("a.wav", 1), ("b.wav", 2), ("skip-me.wav", 3)):
        write_media(media / name, scene(9, 16_000, background="noise", events=[("siren", 1, 5)], seed=seed),
                    rate=16_000)
    store = tmp_path / "store"
    one = json.loads(cli(tmp_path, "--store", str(store), "index", "build", str(media / "a.wav"), "--format",
                         "json").stdout)
    assert one["files_indexed"] == 1
    rest = json.loads(cli(tmp_path, "--store", str(store), "index", "build", str(media), "--exclude", "skip-*",
                          "--format", "json").stdout)
    assert rest["files_indexed"] == 1 and rest["files_removed"] == 0
    cli(tmp_path, "--store", str(store), "index", "build", str(media), "-m", "LOGMEL", "--window", "4")
    sets = json.loads(cli(tmp_path, "--store", str(store), "index", "status", "--format", "json").stdout)["sets"]
    assert len(sets) == 2
    refused = cli(tmp_path, "--store", str(store), "index", "remove-set", sets[1]["name"])
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert cli(tmp_path, "--store", str(store), "index", "remove-set", sets[1]["name"], "--yes").exit_code == 0
    assert len(json.loads(cli(tmp_path, "--store", str(store), "index", "status", "--format",
                              "json").stdout)["sets"]) == 1
    assert cli(tmp_path, "--store", str(store), "index", "check").exit_code == 0
    cli(tmp_path, "--store", str(store), "labels", "add", "a.wav", "1", "5", "siren")
    cli(tmp_path, "--store", str(store), "labels", "add", "b.wav", "0", "9", "siren", "--negative")
    assert cli(tmp_path, "--store", str(store), "train", "siren").exit_code == 0
    assert cli(tmp_path, "--store", str(store), "classifiers", "remove", "siren", "--yes").exit_code == 0
    assert json.loads(cli(tmp_path, "--store", str(store), "classifiers", "--format", "json").stdout) == []


def test_search_with_several_clips_excluded_files_and_a_floor(world, tmp_path):
    from tests.conftest import tone_file

    one, two = tone_file(tmp_path / "q1.wav", 4, "siren", seed=1), tone_file(tmp_path / "q2.wav", 3, "siren", seed=2)
    hits = json.loads(cli(world, "search", str(one), str(two), "-k", "5", "--format", "json").stdout)
    assert hits
    skipped = json.loads(cli(world, "search", str(one), "-k", "5", "--exclude-file", "long.mkv",
                             "--format", "json").stdout)
    assert skipped and not any(h["path"].endswith("long.mkv") for h in skipped)
    floor = hits[0]["score"] - 1e-6
    top = json.loads(cli(world, "search", str(one), str(two), "-k", "5", "--min-score", str(floor),
                         "--format", "json").stdout)
    assert [h["score"] for h in top] == [hits[0]["score"]]


def test_an_edl_of_mixed_frame_rates_keeps_one_rate_and_runs_forward():
    """CMX 3600 has one rate per list: audio files (no rate) and a 24 fps video in one list used
    to give record timecodes that jumped ahead and then ran backwards."""
    from audioscan.query.formats import to_edl
    from audioscan.query.moments import Moment

    moments = [Moment("/m/a.wav", 10, end=18, score=0.9), Moment("/m/b.flac", 40, end=48, score=0.8),
               Moment("/m/c.mp4", 3600, end=3608, score=0.7, fps=24.0), Moment("/m/d.mp4", 5, end=13.5, score=0.6,
                                                                               fps=24.0)]
    events = re.findall(r"^\d{3}\s+AX\s+AA/V\s+C\s+(\S+) (\S+) (\S+) (\S+)$", to_edl(moments), re.M)
    records = [(parse_timecode(rec_in, 24), parse_timecode(rec_out, 24)) for _, _, rec_in, rec_out in events]
    assert records[0][0] == 3600 and all(a[1] == b[0] for a, b in zip(records, records[1:]))
    for (src_in, src_out, _, _), moment in zip(events, moments):
        assert abs(parse_timecode(src_in, 24) - moment.start) <= 1 / 24
        assert abs(parse_timecode(src_out, 24) - moment.end) <= 1 / 24
    assert all(int(tc.rsplit(":", 1)[1]) < 24 for event in events for tc in event)


def test_a_moments_csv_names_files_as_labels_do(world, tmp_path):
    """One resolver for every command that takes a file name: an indexed file by the name labels
    use, else a file beside the CSV; a name that is nowhere says so (not 'not on disk any more')."""
    (tmp_path / "m.csv").write_text("path,start,end\nlong.mkv,20,28\n")
    cut = cli(world, "export", "clips", str(tmp_path / "m.csv"), "--out-dir", str(tmp_path / "out"))
    assert cut.exit_code == 0 and (tmp_path / "out" / "long_00-00-20.000.wav").is_file()
    (tmp_path / "gone.csv").write_text("path,start,end\nnever-was.wav,1,2\n")
    missing = cli(world, "export", "clips", str(tmp_path / "gone.csv"), "--out-dir", str(tmp_path / "out"))
    assert missing.exit_code == 1 and "neither an indexed media file nor a file beside" in missing.stderr
