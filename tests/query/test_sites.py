"""Sites: `index build --site`, `index sites FILE.csv`, counts per site in `index status`, and the site
of every moment; bad rows named, nothing stored from a bad file."""

from __future__ import annotations

import csv
import io
import json

import pytest

import audioscan
from audioscan.indexer.media.samples import scene, write_media
from tests.query.helpers import cli


@pytest.fixture
def sited(tmp_path):
    """Two cards, one of them with a sub-folder that is a site of its own."""
    media = tmp_path / "media"
    for name, seconds in (("a/1.wav", 4), ("a/2.wav", 6), ("a/deep/3.wav", 5), ("b/4.wav", 3)):
        write_media(media / name, scene(seconds, 16_000, background="noise", events=[], seed=seconds), rate=16_000)
    assert cli(tmp_path, "index", "build", str(media / "a"), "--site", "north").exit_code == 0
    assert cli(tmp_path, "index", "build", str(media)).exit_code == 0
    return tmp_path


def _status_sites(world) -> dict:
    status = json.loads(cli(world, "index", "status", "--format", "json").stdout)
    return {item["site"]: (item["files"], item["hours"]) for item in status["sites"]}


def test_a_built_folder_is_its_site_and_status_counts_it(sited):
    assert _status_sites(sited) == {"north": (3, round(15 / 3600, 3)), None: (1, round(3 / 3600, 3))}
    assert "site north: 3 file(s)" in cli(sited, "index", "status").output


def test_a_sites_file_names_folders_the_deepest_wins_and_moments_carry_it(sited):
    sites = sited / "sites.csv"
    sites.write_text("site,latitude,longitude,folder\nridge,52.5,13.4,media/a/deep\nsouth,-33.9,18.4,media/b\n"
                     "north,60.1,24.9,media/a\n")
    listed = {row["site"]: row for row in json.loads(cli(sited, "index", "sites", str(sites), "--format",
                                                         "json").stdout)}
    assert (listed["ridge"]["files"], listed["north"]["files"], listed["south"]["files"]) == (1, 2, 1)
    assert (listed["north"]["latitude"], listed["north"]["longitude"]) == (60.1, 24.9)
    assert _status_sites(sited)[None] == (0, 0.0)
    lib = audioscan.open(sited / "store")
    by_name = {hit.path.rsplit("/", 1)[1]: hit.site for hit in lib.search(("1.wav", 1.0), k=10)}
    assert by_name == {"2.wav": "north", "3.wav": "ridge", "4.wav": "south"}
    rows = list(csv.DictReader(io.StringIO(cli(sited, "search", "--from", "1.wav", "--at", "1",
                                               "--format", "csv").stdout)))
    assert {row["path"].rsplit("/", 1)[1]: row["site"] for row in rows} == by_name
    # a later --site keeps the coordinates the file gave
    assert cli(sited, "index", "build", str(sited / "media" / "a"), "--site", "north").exit_code == 0
    assert json.loads(cli(sited, "index", "sites", "--format", "json").stdout)[0]["latitude"] == 60.1


def test_every_bad_row_is_named_and_nothing_is_stored(sited):
    before = cli(sited, "index", "sites", "--format", "json").stdout
    sites = sited / "sites.csv"
    sites.write_text("site,latitude,longitude,folder\n"
                     "ok,1,2,media/b\n"                       # good, but not stored
                     "x,91,0,media/b\n"                       # 3: latitude out of range
                     "y,1,,media/b\n"                         # 4: latitude without longitude
                     "z,1,2,/nowhere/at/all\n"                # 5: not indexed
                     "bad\tname,1,2,media/b\n"                # 6: a tab in a site name
                     ",1,2,media/b\n"                         # 7: no name
                     "w,nan,nan,media/b\n"                    # 8: not finite
                     "v,1,2,\n"                               # 9: no folder
                     "u,1,2,media/b\n"                        # 10: media/b is 'ok' on line 2
                     "=cmd|' /C calc'!A0,1,2,../../etc\n")    # 11: a formula name, a folder outside
    result = cli(sited, "index", "sites", str(sites))
    assert result.exit_code == 1 and "Traceback" not in result.output
    for line in range(3, 12):
        assert f"sites.csv:{line}:" in result.output, line
    assert "sites.csv:2:" not in result.output
    assert cli(sited, "index", "sites", "--format", "json").stdout == before


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 101, "\u202eevil"])
def test_a_site_name_every_export_cannot_keep_is_refused(tmp_path, name):
    (tmp_path / "card").mkdir()
    result = cli(tmp_path, "index", "build", str(tmp_path / "card"), "--site", name)
    assert result.exit_code == 1 and "Traceback" not in result.output and "site" in result.output
    assert not (tmp_path / "store").exists()  # refused before anything was built


def test_a_sites_zone_places_the_local_times_of_song_meter_names(tmp_path):
    media = tmp_path / "media"
    write_media(media / "ridge" / "SM4A_20241027_023000.wav", scene(4, 16_000, background="noise", events=[], seed=1),
                rate=16_000)
    write_media(media / "ridge" / "20241027_013000.WAV", scene(4, 16_000, background="noise", events=[], seed=2),
                rate=16_000)
    assert cli(tmp_path, "index", "build", str(media)).exit_code == 0
    sites = tmp_path / "sites.csv"
    sites.write_text("site,latitude,longitude,folder,time zone\nridge,52.5,13.4,media/ridge,Europe/Berlin\n")
    assert cli(tmp_path, "index", "sites", str(sites)).exit_code == 0
    starts = {row["path"].rsplit("/", 1)[1]: row for row in json.loads(cli(tmp_path, "index", "times", "--format",
                                                                           "json").stdout)}
    # the Song Meter's 02:30 that night, placed in the zone (the first 02:30: clocks went back at 03:00)
    assert starts["SM4A_20241027_023000.wav"]["start"] == "2024-10-27T02:30:00.000+02:00"
    assert starts["SM4A_20241027_023000.wav"]["zone"] == "Europe/Berlin"
    assert starts["20241027_013000.WAV"]["zone"] == "UTC"  # an AudioMoth's UTC stays UTC
    listed = json.loads(cli(tmp_path, "index", "sites", "--format", "json").stdout)
    assert listed[0]["zone"] == "Europe/Berlin"
    bad = tmp_path / "bad.csv"
    bad.write_text("site,latitude,longitude,folder,time zone\nridge,52.5,13.4,media/ridge,Atlantis/Capital\n")
    result = cli(tmp_path, "index", "sites", str(bad))
    assert result.exit_code == 1 and "bad.csv:2:" in result.output and "Atlantis" in result.output
