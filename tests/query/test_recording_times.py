"""Recording starts: found at build (container tags, AudioMoth and Song Meter names), given by CSV
(`index times`), kept through repair, and turned into clock times in every output."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil

import av
import numpy as np
import pytest

import audioscan
from audioscan.indexer.media.recorded import RecordingStart, audiomoth_zone, from_container, from_name
from audioscan.indexer.media.samples import scene, write_media
from audioscan.indexer.store.store import Store
from tests.indexer.helpers import build_once
from tests.query.helpers import cli


# ------------------------------------------------------------------ sources, one by one
@pytest.mark.parametrize("name, local, zone, source", [
    ("20190310_063000.WAV", "2019-03-10 06:30:00", "UTC", "audiomoth"),          # AudioMoth: UTC by default
    ("20190310_063000T.WAV", "2019-03-10 06:30:00", "UTC", "audiomoth"),         # triggered recording
    ("SM4A12345_20190310_063000.wav", "2019-03-10 06:30:00", None, "song meter"),  # local time, zone unknown
    ("SMM01234_0+1_20200101_235959.wav", "2020-01-01 23:59:59", None, "song meter"),  # stereo channel part
    ("ARIZONA-1_20161023$195550.wac", "2016-10-23 19:55:50", None, "song meter"),  # GPS-synchronised clock
])
def test_recorder_names_give_their_clock_time(name, local, zone, source):
    found = from_name(name)
    assert (str(found.local), found.zone, found.source) == (local, zone, source)


@pytest.mark.parametrize("comment, zone", [
    ("Recorded at 06:30:00 10/03/2019 (UTC) by AudioMoth 248D9B035B0C7E7B at gain setting 2", "UTC"),
    ("Recorded at 06:30:00 10/03/2019 (UTC+1) by AudioMoth 248D9B035B0C7E7B", "+01:00"),
    ("Recorded at 06:30:00 10/03/2019 (UTC-5:30) by AudioMoth 248D9B035B0C7E7B", "-05:30"),
    ("a comment someone typed (UTC+3)", "UTC"), (None, "UTC"), ("Recorded at (UTC+99)", "UTC"),
])
def test_an_audiomoth_set_to_a_time_zone_says_so_in_its_comment(comment, zone):
    assert audiomoth_zone(comment) == zone
    assert from_name("20190310_063000.WAV", comment).zone == zone


def test_a_build_reads_the_audiomoth_comment(tmp_path):
    path = tmp_path / "media" / "20190310_063000.WAV"
    path.parent.mkdir()
    with av.open(str(path), "w", format="wav") as container:
        container.metadata["comment"] = "Recorded at 06:30:00 10/03/2019 (UTC+1) by AudioMoth 248D9B035B0C7E7B"
        stream = container.add_stream("pcm_s16le", rate=16_000, layout="mono")
        noise = (scene(3, 16_000, background="noise", events=[],
                       seed=3) * 20_000).astype(np.int16)[None]  # silence is refused
        frame = av.AudioFrame.from_ndarray(noise, format="s16", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    build_once(tmp_path / "store", tmp_path / "media")
    (row,) = audioscan.open(tmp_path / "store").recordings.list()
    assert (row.start, row.zone, row.source) == ("2019-03-10T06:30:00.000+01:00", "+01:00", "audiomoth")


@pytest.mark.parametrize("name", ["20191345_063000.WAV", "20190229_063000.WAV", "SM4_20190310_256000.wav",
                                  "holiday.wav", "20190310_0630.WAV", "=cmd|' /C calc'!A0_20190310_063000.wav\n",
                                  "x" * 5000 + "_20190310_063000.wav/"])
def test_impossible_or_foreign_names_give_no_time(name):
    assert from_name(name) is None


@pytest.mark.parametrize("tag, expected", [
    ("2023-06-01T21:15:00.000000Z", dt.datetime(2023, 6, 1, 21, 15)),
    ("2023-06-01T23:15:00+02:00", dt.datetime(2023, 6, 1, 21, 15)),
    ("1904-01-01T00:00:00.000000Z", None),   # an MP4 muxer that did not know
    ("1970-01-01T00:00:00Z", None),
    ("yesterday", None), ("", None), (None, None), ("2023-13-01T00:00:00Z", None), ("9" * 100, None),
])
def test_a_container_tag_is_utc_or_nothing(tag, expected):
    found = from_container(tag)
    assert (found.local if found else None) == expected
    assert found is None or found.zone == "UTC"


def test_clock_times_follow_daylight_saving_changes():
    spring = RecordingStart(dt.datetime(2024, 3, 31, 1, 30), "Europe/Berlin", "user")
    assert spring.iso_at(0) == "2024-03-31T01:30:00.000+01:00"
    assert spring.iso_at(3600) == "2024-03-31T03:30:00.000+02:00"  # 02:00 became 03:00
    autumn = RecordingStart(dt.datetime(2024, 10, 27, 2, 30, fold=1), "Europe/Berlin", "user")
    assert autumn.iso_at(0) == "2024-10-27T02:30:00.000+01:00"  # the second 02:30 of that night
    assert autumn.iso_at(1800) == "2024-10-27T03:00:00.000+01:00"
    unknown = RecordingStart(dt.datetime(2024, 3, 31, 1, 30), None, "song meter")
    assert unknown.iso_at(3600) == "2024-03-31T02:30:00.000"  # a local time, no offset claimed


# ------------------------------------------------------------------ a build finds them
def _tagged_m4a(path, creation_time: str, seconds: int = 3) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        container.metadata["creation_time"] = creation_time
        stream = container.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(scene(seconds, 16_000, background="noise", events=[],
                                                 seed=1)[None].astype(np.float32),
                                           format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


@pytest.fixture
def field(tmp_path):
    """A card of each source: AudioMoth, Song Meter, a tagged camera file, and one with no time."""
    media = tmp_path / "media"
    for name in ("moth/20240331_003000.WAV", "meter/SM4_20240331_013000.wav", "plain/holiday.wav"):
        write_media(media / name, scene(3, 16_000, background="noise", events=[], seed=2), rate=16_000)
    media.joinpath("cam").mkdir()
    _tagged_m4a(media / "cam" / "clip.m4a", "2023-06-01T21:15:00.000000Z")
    build_once(tmp_path / "store", media)
    return tmp_path


def _listed(world, *extra) -> dict[str, dict]:
    result = cli(world, "index", "times", "--format", "json", *extra)
    assert result.exit_code == 0, result.output
    return {row["path"].split("/media/")[1]: row for row in json.loads(result.stdout)}


def test_a_build_finds_each_source_and_keeps_it(field):
    rows = _listed(field)
    assert (rows["moth/20240331_003000.WAV"]["start"], rows["moth/20240331_003000.WAV"]["source"]) == (
        "2024-03-31T00:30:00.000+00:00", "audiomoth")
    assert (rows["meter/SM4_20240331_013000.wav"]["start"], rows["meter/SM4_20240331_013000.wav"]["zone"]) == (
        "2024-03-31T01:30:00.000", None)
    assert rows["cam/clip.m4a"]["source"] == "container" and rows["cam/clip.m4a"]["start"].startswith(
        "2023-06-01T21:15:00")
    assert rows["plain/holiday.wav"]["start"] is None and rows["plain/holiday.wav"]["source"] is None
    table = cli(field, "index", "times")
    assert "1 file(s) have no known start" in table.output


def test_a_store_from_before_times_looks_once_on_the_next_build(field):
    with Store.open(field / "store", write=True) as store, store.connect() as con:
        con.execute("UPDATE media SET recorded_local = NULL, recorded_zone = NULL, recorded_source = NULL")
    assert _listed(field)["moth/20240331_003000.WAV"]["start"] is None
    report = build_once(field / "store", field / "media")
    assert report.windows_embedded == 0  # nothing embedded again: only looked at
    assert _listed(field)["moth/20240331_003000.WAV"]["source"] == "audiomoth"


# ------------------------------------------------------------------ given by CSV
def test_given_times_win_are_shown_as_the_users_and_survive_a_lost_catalog(field):
    times = field / "times.csv"
    times.write_text("path,start,time zone\nholiday.wav,2024-10-27T02:30:00+01:00,Europe/Berlin\n"
                     "SM4_20240331_013000.wav,2024-03-31T01:30:00,Europe/Berlin\n")
    rows = _listed(field, str(times))
    assert (rows["plain/holiday.wav"]["start"], rows["plain/holiday.wav"]["source"]) == (
        "2024-10-27T02:30:00.000+01:00", "user")  # the second 02:30 of that night, as its offset says
    assert rows["meter/SM4_20240331_013000.wav"]["start"] == "2024-03-31T01:30:00.000+01:00"
    (field / "store" / "catalog.duckdb").unlink()
    for name in ("catalog.good.duckdb", "catalog.good.json"):
        (field / "store" / name).unlink(missing_ok=True)
    assert cli(field, "index", "repair").exit_code == 0
    build_once(field / "store", field / "media")
    assert _listed(field) == rows  # the user's starts came back from the journal; found ones were found again


def test_every_bad_row_is_named_and_nothing_is_stored(field):
    times = field / "times.csv"
    times.write_text("path,start,time zone\n"
                     "holiday.wav,2024-03-31T01:00:00,Europe/Berlin\n"          # good, but not stored
                     "nope.wav,2024-03-31T01:00:00,UTC\n"                        # 3: not indexed
                     "20240331_003000.WAV,2024-03-31T02:30:00,Europe/Berlin\n"   # 4: never happened
                     "clip.m4a,2024-10-27T02:30:00,Europe/Berlin\n"              # 5: happened twice
                     "SM4_20240331_013000.wav,2024-02-30T01:00:00,UTC\n"         # 6: no such day
                     "SM4_20240331_013000.wav,2024-03-01,UTC\n"                  # 7: no time of day
                     "holiday.wav,2024-03-31T01:00:00,Mars/Olympus\n"            # 8: no such zone
                     "=HYPERLINK(\"x\"),2024-03-31T01:00:00,UTC\n"                # 9: a formula as a path
                     "holiday.wav,2024-03-31T01:00:00+05:00,Europe/Berlin\n"     # 10: the zone's offset is +01:00
                     "holiday.wav,2024-03-31T01:00:00,../../etc/localtime\n")    # 11: a path as a zone
    before = _listed(field)
    result = cli(field, "index", "times", str(times))
    assert result.exit_code == 1 and "Traceback" not in result.output
    for line in range(3, 12):
        assert f"times.csv:{line}:" in result.output
    assert "times.csv:2:" not in result.output and "nothing was" in result.output
    assert _listed(field) == before


@pytest.mark.parametrize("text", ["", "path,start\n", "\x00\x01\x02", "path;start;zone\n" + "a" * 200_000 + ";x;y\n"])
def test_empty_or_broken_files_are_one_sentence(field, text):
    times = field / "times.csv"
    times.write_text(text)
    result = cli(field, "index", "times", str(times))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1 and len(result.output) < 2000


# ------------------------------------------------------------------ every output has the clock time
def test_moments_carry_their_clock_time_in_every_text_format(field):
    lib = audioscan.open(field / "store")
    times = field / "times.csv"
    times.write_text("path,start,time zone\nholiday.wav,2024-03-31T01:59:58,Europe/Berlin\n")
    lib.recordings.give_times(times)
    lib.labels.add("holiday.wav", 2.5, end=3.0, label="owl")
    hits = lib.search(("holiday.wav", 1.0), k=5)
    by_name = {hit.path.rsplit("/", 1)[1]: hit for hit in hits}
    assert by_name["20240331_003000.WAV"].iso_start().startswith("2024-03-31T00:30:00")
    moments = lib.labels.moments(lib.labels.list("owl"))
    assert moments[0].iso_start() == "2024-03-31T03:00:00.500+02:00"  # 2.5 s after 01:59:58, across the change
    listed = [json.loads(line) for line in cli(field, "labels", "list", "--format", "ndjson").stdout.splitlines()]
    assert listed[0]["datetime"] == "2024-03-31T03:00:00.500+02:00"
    raven = cli(field, "labels", "list", "--format", "raven").stdout.splitlines()
    header, row = raven[0].split("\t"), raven[1].split("\t")
    assert row[header.index("Begin Date Time")] == "2024/03/31 03:00:00.500"
    assert row[header.index("Begin Clock Time")] == "03:00:00.500"
    found = list(csv.DictReader(io.StringIO(cli(field, "search", "--from", "holiday.wav", "--at", "1", "-k", "4",
                                                "--format", "csv").stdout)))
    clock = {row["path"].rsplit("/", 1)[1]: row["datetime"] for row in found}
    assert clock["20240331_003000.WAV"].startswith("2024-03-31T00:30:00") and clock.get("clip.m4a", "x")
    assert all(value == "" for name, value in clock.items() if name not in (
        "20240331_003000.WAV", "clip.m4a", "SM4_20240331_013000.wav", "holiday.wav"))
