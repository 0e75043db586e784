"""Filters (--site, --after/--before, --hours, --path) against a brute-force reference: every window's
clock time worked out one by one with datetime and zoneinfo, every condition checked in plain Python."""

from __future__ import annotations

import datetime as dt
import json
from fnmatch import fnmatch

import numpy as np
import pytest

import audioscan
from audioscan.api.moments import MomentFilter
from audioscan.indexer.media.samples import scene, write_media
from audioscan.query import rescore as rescoring
from tests.indexer.helpers import build_once
from tests.query.helpers import cli

# name: (site folder, start, zone): across the spring change, across midnight, a local clock of no
# known zone, a UTC AudioMoth card, and a file with no start at all.
FILES = {
    "north/spring.wav": ("2024-03-31T01:59:50", "Europe/Berlin"),
    "north/midnight.wav": ("2024-03-30T23:59:45", "Europe/Berlin"),
    "south/local.wav": ("2024-03-31T04:59:45", ""),
    "south/20240331_021000.WAV": None,  # AudioMoth: found from its name, UTC
    "south/unknown.wav": None,
}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    base = tmp_path_factory.mktemp("night")
    for k, name in enumerate(FILES):
        write_media(base / "media" / name,
                    scene(30, 16_000, background="noise", events=[("siren", 10, 20)] if k % 2 else [],
                          seed=k), rate=16_000)
    build_once(base / "store", base / "media")
    times = base / "times.csv"
    times.write_text("path,start,time zone\n" + "".join(f"{name},{start},{zone}\n" for name, given in FILES.items()
                                                       if given for start, zone in [given]))
    sites = base / "sites.csv"
    sites.write_text("site,latitude,longitude,folder\nN,1,2,media/north\nS,3,4,media/south\n")
    assert cli(base, "index", "times", str(times)).exit_code == 0
    assert cli(base, "index", "sites", str(sites)).exit_code == 0
    lib = audioscan.open(base / "store")
    lib.labels.add("spring.wav", 10, end=20, label="siren")
    lib.labels.add("midnight.wav", 0, end=30, label="siren", negative=True)
    lib.labels.add("local.wav", 10, end=20, label="siren")
    lib.labels.add("unknown.wav", 0, end=30, label="siren", negative=True)
    lib.train("siren")
    return base


def brute_force(lib, where: dict) -> set[int]:
    """The ids of the windows the filter's words describe, one window at a time."""
    snapshot = lib.snapshot()
    after, before = (where.get(key) for key in ("after", "before"))
    kept = set()
    for window_id, media_id, start in zip(snapshot.ids, snapshot.media_ids, snapshot.starts):
        item = snapshot.media[int(media_id)]
        if where.get("sites") and item.site not in where["sites"]:
            continue
        if where.get("paths") and not any(fnmatch(item.path, g) or fnmatch(item.rel, g)
                                          or fnmatch(item.rel.rsplit("/", 1)[-1], g) for g in where["paths"]):
            continue
        if after or before or where.get("hours"):
            if item.recorded is None:
                continue
            clock = item.recorded.at(float(start))  # aware in its zone, or naive local
            wall = clock.replace(tzinfo=None)
            ok = True
            for bound, keep in ((after, lambda a, b: a >= b), (before, lambda a, b: a < b)):
                if bound is None:
                    continue
                value = dt.datetime.fromisoformat(bound.replace("Z", "+00:00"))
                if value.tzinfo is None:
                    ok &= keep(wall, value)
                else:
                    ok &= clock.tzinfo is not None and keep(clock, value)
            if where.get("hours"):
                lo, hi = (dt.time.fromisoformat(part) for part in where["hours"].split("-"))
                now = wall.time()
                ok &= (lo <= now < hi) if lo < hi else (now >= lo or now < hi)
            if not ok:
                continue
        kept.add(int(window_id))
    return kept


CASES = [
    {"sites": ["N"]},
    {"hours": "02:00-05:00"},
    {"hours": "02:00-03:00"},          # the hour the spring change skipped: none of spring.wav's windows
    {"hours": "23:59-00:01"},          # across midnight
    {"hours": "05:00-02:10"},
    {"after": "2024-03-31"},
    {"before": "2024-03-31T03:00:05"},
    {"after": "2024-03-31T00:00:05Z", "before": "2024-03-31T02:10:10+00:00"},  # instants: no-zone files left out
    {"paths": ["*.WAV"]},
    {"paths": ["north/*"], "hours": "03:00-04:00"},
    {"sites": ["S"], "after": "2024-03-31T05:00", "before": "2024-03-31T05:00:10"},
]


@pytest.mark.parametrize("where", CASES, ids=lambda where: json.dumps(where))
def test_each_filter_keeps_exactly_the_windows_brute_force_finds(night, where):
    lib = audioscan.open(night / "store")
    snapshot = lib.snapshot()
    made = MomentFilter.parse(**where)
    mask = made.windows(snapshot.media, snapshot.media_ids, starts=snapshot.starts, channels=snapshot.channels)
    reference = brute_force(lib, where)
    assert reference, "each case keeps something"
    assert set(snapshot.ids[mask].tolist()) == reference


@pytest.mark.parametrize("where", CASES[:6], ids=lambda where: json.dumps(where))
def test_a_filtered_rescore_scores_only_the_kept_windows_and_agrees_with_the_whole(night, where, monkeypatch):
    lib = audioscan.open(night / "store")
    detector = lib.detector("siren")
    whole = {(w.path, w.start): w.score for w in detector.windows()}
    scored = []
    real = rescoring.all_scores
    monkeypatch.setattr("audioscan.api.detector.all_scores",
                        lambda snapshot, classifier: scored.append(len(snapshot)) or real(snapshot, classifier))
    kept = detector.windows(MomentFilter.parse(**where))
    reference = brute_force(lib, where)
    assert scored == [len(reference)]  # only the kept windows were read and scored
    assert {(w.path, w.start): w.score for w in kept} == pytest.approx(  # the same scores (to BLAS's rounding)
        {key: score for key, score in whole.items() if key in {(w.path, w.start) for w in kept}}, abs=1e-5)
    assert len(kept) == len(reference)


def test_every_command_that_lists_moments_takes_the_filters(night):
    flags = ["--site", "N", "--hours", "23:00-04:00"]
    for args in (["rescore", "siren", "--threshold", "0"], ["suggest", "siren", "-n", "50"],
                 ["search", "--from", "local.wav", "--at", "12", "-k", "50"], ["labels", "list"]):
        result = cli(night, *args, *flags, "--format", "json")
        assert result.exit_code == 0, (args, result.output)
        moments = json.loads(result.stdout)
        assert moments and all(m["site"] == "N" and "/north/" in m["path"] for m in moments), args
        assert all(m["datetime"][11:13] in ("23", "00", "01", "02", "03") for m in moments), args


@pytest.mark.parametrize("args, words", [
    (["--site", "nowhere"], "no indexed moment matches site nowhere"),
    (["--hours", "02:00-03:00", "--path", "*spring*"], "no indexed moment matches hours 02:00-03:00"),
    (["--hours", "25:00-03:00"], "--hours"),
    (["--hours", "03:00-03:00"], "--hours"),
    (["--hours", "night"], "--hours"),
    (["--after", "2024-13-01"], "--after"),
    (["--after", "2024-03-31", "--before", "2024-03-30"], "nothing can match"),
    (["--after", "x" * 10_000], "--after"),
])
def test_a_filter_that_matches_nothing_or_makes_no_sense_is_one_sentence(night, args, words):
    for command in (["rescore", "siren"], ["labels", "list"], ["search", "--from", "local.wav", "--at", "12"]):
        result = cli(night, *command, *args)
        assert result.exit_code == 1 and "Traceback" not in result.output, (command, result.output)
        assert words in result.output and len(result.output.strip().splitlines()) == 1
        assert len(result.output) < 400


def test_a_filtered_search_reads_only_the_kept_windows(night):
    lib = audioscan.open(night / "store")
    where = MomentFilter.parse(sites=["S"], hours="05:00-06:00")
    reference = brute_force(lib, {"sites": ["S"], "hours": "05:00-06:00"})
    hits = lib.search(("spring.wav", 12.0), k=50, where=where)
    snapshot = lib.snapshot()
    by_key = {(snapshot.media[int(m)].path, float(s)): int(i)
              for i, m, s in zip(snapshot.ids, snapshot.media_ids, snapshot.starts)}
    assert hits and all(hit.site == "S" for hit in hits)
    covered = {window for (path, start), window in by_key.items()
               for hit in hits if path == hit.path and hit.start <= start <= hit.end - 8.0}
    assert covered <= reference and np.isfinite([hit.score for hit in hits]).all()
