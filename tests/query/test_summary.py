"""`rescore NAME --summary hour|day|site` against counting by hand: detections per period, and the audio
behind each worked out one hundredth of a second at a time on each recording's own clock."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

import audioscan
from audioscan.api.moments import MomentFilter
from audioscan.api.summaries import detections_over_time
from tests.query.helpers import cli
from tests.query.test_filters import night  # noqa: F401 - the fixture: files across a clock change and midnight


def by_hand(lib, by: str, where: dict | None = None) -> dict[str, tuple[int, float]]:
    detector = lib.detector("siren")
    found = detector.rescore(0.5, where=MomentFilter.parse(**(where or {})))
    counts: dict[str, int] = {}
    for moment in found:
        key = (moment.site or "none") if by == "site" else (
            "unknown" if moment.recording is None else moment.clock().strftime("%Y-%m-%dT%H" if by == "hour"
                                                                                 else "%Y-%m-%d"))
        counts[key] = counts.get(key, 0) + 1
    snapshot = lib.snapshot()
    keep = MomentFilter.parse(**(where or {})).windows(snapshot.media, snapshot.media_ids, starts=snapshot.starts,
                                                       channels=snapshot.channels) \
        if where else np.ones(len(snapshot.ids), dtype=bool)
    seconds: dict[str, float] = {}
    step = 0.01
    for media_id in np.unique(snapshot.media_ids[keep]):
        item = snapshot.media[int(media_id)]
        mine = keep & (snapshot.media_ids == media_id)
        for t in np.arange(0, item.duration, step):
            if not ((snapshot.starts[mine] <= t) & (snapshot.ends[mine] > t)).any():
                continue
            if by == "site":
                key = item.site or "none"
            elif item.recorded is None:
                key = "unknown"
            else:
                key = item.recorded.at(float(t)).strftime("%Y-%m-%dT%H" if by == "hour" else "%Y-%m-%d")
            seconds[key] = seconds.get(key, 0.0) + step
    return {key: (counts.get(key, 0), seconds.get(key, 0.0) / 3600) for key in set(counts) | set(seconds)}


@pytest.mark.parametrize("by, where", [("hour", None), ("day", None), ("site", None),
                                       ("hour", {"hours": "23:00-03:00"}), ("day", {"sites": ["N"]})])
def test_the_summary_is_what_counting_by_hand_gives(night, by, where):  # noqa: F811
    lib = audioscan.open(night / "store")
    counts = detections_over_time(lib.detector("siren"), by, threshold=0.5, where=MomentFilter.parse(**(where or {})))
    expected = by_hand(lib, by, where)
    assert {c.period for c in counts} == set(expected)
    for c in counts:
        assert c.detections == expected[c.period][0], c
        assert c.hours == pytest.approx(expected[c.period][1], abs=2 * 0.01 / 3600), c
    if by == "hour" and where is None:  # spring.wav's 02:00 hour never happened: only the UTC card's 30 s are in it
        assert next(c.hours for c in counts if c.period == "2024-03-31T02") == pytest.approx(30 / 3600)


def test_the_summary_in_each_format_and_its_refusals(night):  # noqa: F811
    as_csv = list(csv.DictReader(io.StringIO(cli(night, "rescore", "siren", "--summary", "site", "--format",
                                                 "csv").stdout)))
    assert [row["site"] for row in as_csv] == ["N", "S"] and all(float(row["hours"]) > 0 for row in as_csv)
    as_json = json.loads(cli(night, "rescore", "siren", "--summary", "day", "--format", "json").stdout)
    assert {row["day"] for row in as_json} >= {"2024-03-30", "2024-03-31", "unknown"}
    out = night / "per-hour.csv"
    assert cli(night, "rescore", "siren", "--summary", "hour", "--format", "csv", "--out", str(out)).exit_code == 0
    assert out.read_text().startswith("hour,detections,hours\n")
    assert "hours of audio" in cli(night, "rescore", "siren", "--summary", "hour").stdout
    for extra in (["--format", "raven"], ["--per-window"], ["--top", "3"], ["--timecode"],
                  ["--out-dir", str(night / "x")], ["--out", str(night / "t.txt")]):
        result = cli(night, "rescore", "siren", "--summary", "hour", *extra)
        assert result.exit_code == 2 and "Traceback" not in result.output, extra
