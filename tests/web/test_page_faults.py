"""The page's routes against the faults of the CLI's fault matrix, while it runs.

Every route of the app (read from the app itself, so a route added later must be given a sample
request here) is asked once after each fault: the answer is a page, a sound, or JSON; an error is a
JSON sentence with a status chosen for it - never a trace, and never the generic answer to a bug.
"""

from __future__ import annotations

import json
import shutil

import pytest

from audioscan.api import Library
from audioscan.web.app import create_app
from audioscan.web.gate import CSRF_HEADER
from tests.trust.test_fault_matrix import FILE_FAULTS
from tests.web.conftest import Server
from tests.web.test_security import csrf, fetch

# One sample request per route: (method, path as the app declares it) -> (path to ask, body): a JSON
# body, a form (text), or None.
SAMPLES: dict[tuple[str, str], tuple[str, dict | str | None]] = {
    ("GET", "/"): ("/", None),
    ("GET", "/page.js"): ("/page.js", None),
    ("GET", "/page.css"): ("/page.css", None),
    ("POST", "/api/search"): ("/api/search", "media_id=1&at=25&k=3"),
    ("GET", "/media/{media_id:int}/audio"): ("/media/1/audio?start=20&end=24", None),
    ("GET", "/media/{media_id:int}/spectrogram.png"): ("/media/1/spectrogram.png?start=20&end=24", None),
    ("GET", "/api/labels"): ("/api/labels", None),
    ("POST", "/api/labels"): ("/api/labels", {"media_id": 1, "start": 50, "end": 55, "label": "siren",
                                              "positive": False}),
    ("POST", "/api/labels/{label_id:int}/delete"): ("/api/labels/1/delete", {}),
    ("POST", "/api/train"): ("/api/train", {"name": "siren", "label": "siren"}),
    ("GET", "/api/detections"): ("/api/detections?name=siren", None),
    ("GET", "/api/summary"): ("/api/summary?name=siren&by=hour", None),
    ("GET", "/api/suggestions"): ("/api/suggestions?name=siren", None),
    ("POST", "/api/rollback"): ("/api/rollback", {"name": "siren", "version": 1}),
    ("POST", "/api/export"): ("/api/export", {"kind": "csv", "moments": [{"media_id": 1, "start": 20, "end": 24}],
                                              "length": 4}),
    ("GET", "/api/library"): ("/api/library", None),
    ("GET", "/api/build"): ("/api/build", None),
    ("POST", "/api/build"): ("/api/build", {"folder": "/nonexistent-folder-for-the-fault-test"}),
}
_BUG_ANSWER = b"the server failed on this request"


def test_every_route_has_a_sample(world):
    app = create_app(Library(world / "store"))
    declared = {(method, route.path) for route in app.routes for method in (route.methods or {"GET"})
                if method != "HEAD"}
    assert declared == set(SAMPLES)


@pytest.mark.parametrize("fault", sorted(FILE_FAULTS))
def test_every_route_answers_a_fault_in_json(fault, world, loopback):
    library = Library(world / "store")
    library.labels.add("long.mkv", 20, end=30, label="siren")
    library.labels.add("long.mkv", 100, end=110, label="siren", negative=True)
    library.train("siren")
    with Server(create_app(library)) as server:
        FILE_FAULTS[fault](world / "store")
        for (method, _declared), (path, body) in SAMPLES.items():
            kind = "application/x-www-form-urlencoded" if isinstance(body, str) else "application/json"
            headers = {"content-type": kind, CSRF_HEADER: csrf(server)} if method == "POST" else {}
            data = None if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
            status, text, response_headers = fetch(server.url + path, method, data, headers)
            where = f"{method} {path} | {fault}: {status} {text[:300]!r}"
            assert b"Traceback" not in text and _BUG_ANSWER not in text, where
            if status >= 400:
                assert response_headers.get("content-type", "").startswith("application/json"), where
                assert json.loads(text)["error"], where
    shutil.rmtree(world / "store", ignore_errors=True)


@pytest.mark.parametrize("bug", [KeyError("media_id"), ValueError("a bug's own words"), IndexError("list index")])
def test_a_bug_is_a_500_never_bad_input(bug, world, loopback, monkeypatch):
    """A route that fails by a bug answers the generic JSON 500 (its trace goes to the log), so a bug
    never reads as the user's mistake and never shows its words."""
    library = Library(world / "store")

    def broken(*args, **kwargs):
        raise bug

    monkeypatch.setattr(library.labels, "list", broken)
    with Server(create_app(library)) as server:
        status, text, headers = fetch(server.url + "/api/labels")
    assert status == 500 and _BUG_ANSWER in text and str(bug).encode() not in text
    assert headers["content-type"].startswith("application/json")
