"""The page's filters (site, after, before, hours, path) through the real app: search and detections keep
only what they name, and a filter that matches nothing or makes no sense is a 400 with one sentence."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from audioscan.api import Library
from audioscan.web.gate import CSRF_HEADER
from tests.query.helpers import label_sirens
from tests.web.test_security import csrf, fetch


@pytest.fixture
def placed(world):
    """The world with a site (sub/) and a start for long.mkv, and a siren detector."""
    library = Library(world / "store")
    library.recordings.name_site([world / "media" / "sub"], "B")
    times = world / "times.csv"
    times.write_text("path,start,time zone\nlong.mkv,2024-03-31T01:59:00,Europe/Berlin\n")
    library.recordings.give_times(times)
    label_sirens(world)
    library.train("siren")
    return world


def search(server, **fields):
    body = urllib.parse.urlencode({"media_id": 2, "at": 25, "k": 20, **fields}).encode()
    return fetch(server.url + "/api/search", "POST", body,
                 {"content-type": "application/x-www-form-urlencoded", CSRF_HEADER: csrf(server)})


def test_search_and_detections_keep_what_the_filters_name(placed, server):
    status, text, _ = search(server, site="B")
    hits = json.loads(text)["hits"]
    assert status == 200 and hits and all(hit["site"] == "B" and "/sub/" in hit["path"] for hit in hits)
    status, text, _ = search(server, hours="03:00-04:00")  # long.mkv's 01:59 + 61 s is 03:00, the change
    hits = json.loads(text)["hits"]
    assert status == 200 and hits and all(hit["datetime"][11:13] == "03" for hit in hits)
    status, text, _ = fetch(f"{server.url}/api/detections?name=siren&threshold=0&path=*.flac")
    assert status == 200 and all(hit["path"].endswith(".flac") for hit in json.loads(text)["hits"])
    status, text, _ = fetch(f"{server.url}/api/suggestions?name=siren&n=5&site=B")
    assert status == 200 and all(hit["site"] == "B" for hit in json.loads(text)["hits"])


@pytest.mark.parametrize("fields, words", [
    ({"site": "nowhere"}, "no indexed moment matches site nowhere"),
    ({"hours": "<script>alert(1)</script>"}, "is not a range of clock times"),
    ({"after": "2024-02-30"}, "is not a date"),
    ({"after": "2024-03-02", "before": "2024-03-01"}, "nothing can match"),
    ({"path": "x" * 5000}, "longer than"),
    ({"site": "a\u2028b"}, "line separators"),
])
def test_a_filter_that_cannot_match_is_one_sentence(placed, server, fields, words):
    for answer in (search(server, **fields),
                   fetch(f"{server.url}/api/detections?name=siren&{urllib.parse.urlencode(fields)}")):
        status, text, _ = answer
        said = json.loads(text)["error"]
        assert status == 400 and words in said and "\n" not in said and "Traceback" not in said, said


def test_the_summary_route_counts_as_rescore_summary_does_and_refuses_an_unknown_period(placed, server):
    from audioscan.api.summaries import detections_over_time

    status, text, _ = fetch(server.url + "/api/summary?name=siren&by=site&threshold=0.5", "GET", None, {})
    assert status == 200, text
    expected = detections_over_time(Library(placed / "store").detector("siren"), "site", threshold=0.5)
    assert json.loads(text) == {"by": "site", "periods": [{"period": c.period, "detections": c.detections,
                                                           "hours": round(c.hours, 4)} for c in expected]}
    status, text, _ = fetch(server.url + "/api/summary?name=siren&by=<b>week</b>", "GET", None, {})
    assert status == 400 and "'by' must be one of hour, day, site" in json.loads(text)["error"]
