"""The page against a hostile world: other sites (DNS rebinding, cross-site requests), malformed
and oversized input on every route, slow clients, and background jobs that fail."""

from __future__ import annotations

import json
import socket
import time
import tracemalloc

import numpy as np
import pytest

from audioscan.api import Library
from audioscan.indexer.media.samples import write_media
from audioscan.query.export import file_names
from audioscan.web import server as serving
from audioscan.web.app import allowed_hosts, create_app
from audioscan.web.gate import CSRF_HEADER, MAX_BODY_BYTES
from tests.web.conftest import Server
from tests.web.test_security import csrf, fetch

JSON = {"content-type": "application/json"}


def post(server, path: str, body, headers: dict | None = None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return fetch(server.url + path, "POST", data, {**JSON, CSRF_HEADER: csrf(server), **(headers or {})})


def labels_count(server) -> int:
    return len(json.loads(fetch(server.url + "/api/labels")[1])["labels"])


# ------------------------------------------------------------------ other sites
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "", "[::2]:80"])
def test_a_foreign_host_name_gets_nothing(server, host):
    """DNS rebinding: a page of another site whose name now points here must not read the CSRF
    token, start a build, list files or stream audio."""
    for method, path, body in [("GET", "/", None), ("GET", "/api/library", None),
                               ("GET", "/media/1/audio?start=20&end=24", None),
                               ("POST", "/api/build", json.dumps({"folder": "/"}).encode())]:
        status, text, _ = fetch(server.url + path, method, body, {"Host": host, **JSON, CSRF_HEADER: csrf(server)})
        assert status == 421 and csrf(server).encode() not in text
    assert server.app.state.web.build_state == {"running": False}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_the_loopback_names_are_answered(server, host):
    status, page, _ = fetch(server.url + "/", headers={"Host": f"{host}:{server.port}"})
    assert status == 200 and csrf(server).encode() in page


def test_the_names_of_a_served_address():
    assert allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert "192.168.1.4" in allowed_hosts("192.168.1.4") and "fe80::1" in allowed_hosts("fe80::1")
    assert socket.gethostname().lower() in allowed_hosts("0.0.0.0")


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"}])
def test_a_request_from_another_site_changes_nothing(server, headers):
    before = labels_count(server)
    status, text, _ = post(server, "/api/labels", {"media_id": 1, "start": 20, "end": 30, "label": "siren",
                                                    "positive": True}, headers)
    assert status == 403 and b"another site" in text and labels_count(server) == before


def test_the_page_itself_may_change_things(server):
    status, made, _ = post(server, "/api/labels", {"media_id": 1, "start": 20, "end": 30, "label": "siren",
                                                    "positive": False},
                           {"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert status == 200 and json.loads(made)["id"] > 0


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_post_changes_anything(server, method):
    before = labels_count(server)
    body = json.dumps({"media_id": 1, "start": 20, "end": 30, "label": "siren", "positive": True}).encode()
    for path in ("/api/labels", "/api/build", "/api/train", "/api/export", "/api/labels/1/delete"):
        status, _, _ = fetch(server.url + path, method, body, JSON)  # no CSRF token, as a foreign page would
        assert status in (405, 200) and (status == 405 or method == "HEAD")
    assert labels_count(server) == before and server.app.state.web.build_state == {"running": False}


def test_every_response_carries_the_security_headers(server):
    for path in ("/", "/page.js", "/api/library", "/nowhere", "/media/9999/audio?start=0&end=1"):
        _, _, headers = fetch(server.url + path)
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("credential", ["token=%C3%A9", "token=%FF", "cookie"])
def test_non_ascii_credentials_are_refused_not_crashed(world, loopback, credential):
    with Server(create_app(Library(world / "store"), access_token="s3cret")) as server:
        if credential == "cookie":
            status, _, _ = fetch(f"{server.url}/api/library", headers={"Cookie": "audioscan_token=\xe9t\xe9"})
        else:
            status, _, _ = fetch(f"{server.url}/api/library?{credential}")
        assert status == 401


def test_a_non_ascii_csrf_token_is_refused_not_crashed(server):
    status, _, _ = fetch(server.url + "/api/labels", "POST", b"{}", {**JSON, CSRF_HEADER: "\xe9\xe9"})
    assert status == 403


# ------------------------------------------------------------------ malformed input, every route
_NOT_OBJECTS = [b"[]", b'"x"', b"null", b"5", b"{", b"\xff\xfe", b"[" * 100_000, b'{"a":' * 50_000]
_GOOD_LABEL = {"media_id": 1, "start": 20, "end": 30, "label": "siren", "positive": True}
BAD_INPUTS = {
    ("POST", "/api/labels"): _NOT_OBJECTS + [
        {**_GOOD_LABEL, "positive": "false"}, {**_GOOD_LABEL, "positive": 1}, {**_GOOD_LABEL, "label": None},
        {**_GOOD_LABEL, "label": ""}, {**_GOOD_LABEL, "label": "x" * 300}, {**_GOOD_LABEL, "label": "a\n0\t9\tX"},
        {**_GOOD_LABEL, "end": None}, {**_GOOD_LABEL, "start": "NaN"}, {**_GOOD_LABEL, "start": 1e999},
        {**_GOOD_LABEL, "media_id": "1; DROP"}, {**_GOOD_LABEL, "media_id": 1.5}, {**_GOOD_LABEL, "start": -3},
        {**_GOOD_LABEL, "start": 5000, "end": 5010}],
    ("POST", "/api/train"): _NOT_OBJECTS + [{}, {"name": 5}, {"name": "x" * 300}, {"name": "a\rb"}],
    ("POST", "/api/rollback"): _NOT_OBJECTS + [{"name": "siren"}, {"name": "siren", "version": "two"},
                                               {"name": "siren", "version": 0}],
    ("POST", "/api/export"): _NOT_OBJECTS + [
        {"kind": "raven", "moments": 5}, {"kind": "pdf", "moments": []}, {"kind": "csv", "moments": [5]},
        {"kind": "csv", "moments": [{"media_id": 1, "start": 3, "end": None}]},
        {"kind": "csv", "moments": [{"media_id": 1, "start": 9, "end": 3}]},
        {"kind": "clips", "moments": [], "length": -8}, {"kind": "csv", "moments": [{"start": 1, "end": 2}] * 3},
        {"kind": "csv", "moments": [{"media_id": 1, "start": 1, "end": 2, "label": "a\tb"}]},
        {"kind": "clips", "moments": [{"media_id": 1, "start": 1, "end": 9, "peak": 500}], "length": 8},
        {"kind": "raven", "moments": [{"media_id": 1, "start": 1, "end": 9, "peak": "nan"}]},
        {"kind": "csv", "moments": [{"media_id": 1, "start": 1, "end": 9, "onset": 6, "peak": 5, "offset": 7}]}],
    ("POST", "/api/build"): _NOT_OBJECTS + [{}, {"folder": None}, {"folder": ["/"]}, {"folder": "/no/such/folder"}],
    ("POST", "/api/search"): [b"", b"k=abc", b"media_id=1", b"media_id=1&at=nan", b"media_id=x&at=3",
                              b"k=100000&media_id=1&at=3"],
    ("GET", "/api/labels"): ["label=" + "x" * 300, "label=%0A"],
    ("GET", "/api/detections"): ["", "name=siren&threshold=nan", "name=siren&threshold=2", "name=siren&page=0",
                                 "name=siren&per_page=-1", "name=siren&version=abc", "name="],
    ("GET", "/api/suggestions"): ["", "name=siren&n=0", "name=siren&n=abc"],
    ("GET", "/api/summary"): ["", "name=siren", "name=siren&by=week", "name=siren&by=hour&threshold=nan",
                              "name=siren&by=%3Cscript%3E", "name=siren&by=day&hours=25:00-03:00"],
    ("GET", "/media/1/audio"): ["", "start=abc&end=3", "start=nan&end=3", "start=0&end=inf", "start=5&end=1",
                                "start=0&end=290", "start=-1&end=3"],
    ("GET", "/media/1/spectrogram.png"): ["", "start=1&end=nan", "start=0&end=500"],
}


@pytest.mark.parametrize("route", list(BAD_INPUTS), ids=lambda route: f"{route[0]} {route[1]}")
def test_every_route_answers_bad_input_with_a_sentence(server, route):
    method, path = route
    before = labels_count(server)
    for bad in BAD_INPUTS[route]:
        if method == "GET":
            status, text, _ = fetch(f"{server.url}{path}?{bad}")
        elif path == "/api/search":
            status, text, _ = fetch(server.url + path, "POST", bad,
                                    {"content-type": "application/x-www-form-urlencoded", CSRF_HEADER: csrf(server)})
        else:
            status, text, _ = post(server, path, bad)
        assert status == 400, (bad if isinstance(bad, dict) else str(bad)[:60], status, text[:200])
        assert json.loads(text)["error"], bad
    assert labels_count(server) == before


def test_no_label_can_forge_rows_in_an_export(server):
    """A label that reached an Audacity or Raven file with a tab or line break would import back as
    labels of its own; the page refuses it where it enters, like every other way in."""
    status, _, _ = post(server, "/api/labels", {**_GOOD_LABEL, "label": "bird\n0.0\t9.0\tINJECTED"})
    assert status == 400
    from audioscan.errors import UserError

    with pytest.raises(UserError, match="control characters"):
        server.app.state.web.library.labels.add("long.mkv", 20, end=30, label="bird\n0.0\t9.0\tINJECTED")


# ------------------------------------------------------------------ size and time
def _raw_post(server, headers: str, chunks) -> bytes:
    """Send an upload by hand (as a client that ignores the answer would) and read the answer."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall((f"POST /api/search HTTP/1.1\r\nHost: 127.0.0.1\r\n{CSRF_HEADER}: {csrf(server)}\r\n"
                      f"Content-Type: multipart/form-data; boundary=b\r\nConnection: close\r\n{headers}\r\n").encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed before the body ended: that is the point
        sock.settimeout(30)
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass  # closed with our unread body still in its buffer: what it answered first is kept
        return answer


def test_a_body_past_the_limit_is_refused(server):
    declared = _raw_post(server, f"Content-Length: {MAX_BODY_BYTES + 1}\r\n", [])
    assert declared.startswith(b"HTTP/1.1 413") and b"larger than" in declared
    part = b'--b\r\nContent-Disposition: form-data; name="clip"; filename="a.wav"\r\n\r\n'
    piece = b"x" * (1 << 20)
    chunked = (b"%x\r\n%s\r\n" % (len(data), data)
               for data in [part] + [piece] * ((MAX_BODY_BYTES >> 20) + 2))
    streamed = _raw_post(server, "Transfer-Encoding: chunked\r\n", chunked)  # no length to refuse early
    assert streamed.startswith(b"HTTP/1.1 413")


def test_an_hours_long_upload_is_refused_within_bounded_memory(server, tmp_path):
    """A long, highly compressible clip (20 minutes of FLAC silence here; 10 hours behaves the same)
    stops decoding at the query limit: refused with a sentence, memory bounded by the limit."""
    clip = write_media(tmp_path / "long.flac", np.zeros(8_000 * 1200, dtype=np.float32), rate=8_000)
    boundary = "audioscanboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"clip\"; filename=\"long.flac\"\r\n"
            "Content-Type: audio/flac\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    tracemalloc.start()
    try:
        status, text, _ = fetch(server.url + "/api/search", "POST", body,
                                {"content-type": f"multipart/form-data; boundary={boundary}", CSRF_HEADER: csrf(server)})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 413 and b"may last 600 s at most" in text
    assert peak < 200 << 20  # 600 s at 16 kHz is 38 MB of samples; the whole file would be 77 MB, 10 h 2.3 GB


def test_export_names_are_shortened_in_one_pass():
    """The name shortener used to drop one character at a time, re-encoding the name each time."""
    names = file_names(["/m/" + "é" * 2_000_000 + ".wav", "/m/" + "é" * 2_000_000 + ".mp3"], ".txt")
    assert all(len(name.encode()) <= 255 for name in names.values()) and len(set(names.values())) == 2


def test_slow_and_idle_clients_cannot_hold_the_page(server, monkeypatch):
    monkeypatch.setattr(serving, "HEADER_SECONDS", 1.0)
    idle = []
    for number in range(400):
        sock = socket.create_connection(("127.0.0.1", server.port))
        if number % 4 == 0:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers that never end
        idle.append(sock)
    clock = time.monotonic()
    status, _, _ = fetch(server.url + "/api/library")
    assert status == 200 and time.monotonic() - clock < 10
    time.sleep(2.5)
    closed = 0
    for sock in idle:
        sock.settimeout(5)
        try:
            closed += sock.recv(1024) == b""
        except OSError:
            closed += 1
        sock.close()
    assert closed == len(idle)


# ------------------------------------------------------------------ background jobs
def test_a_build_that_fails_unexpectedly_shows_its_error(server, monkeypatch, tmp_path):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(server.app.state.web.library, "build", full_disk)
    (tmp_path / "folder").mkdir()
    assert post(server, "/api/build", {"folder": str(tmp_path / "folder")})[0] == 202
    deadline = time.monotonic() + 30
    while (state := json.loads(fetch(server.url + "/api/build")[1]))["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not state["running"] and "No space left on device" in state["error"]


# Routes that read nothing from the request but their path (checked by Starlette's int
# converter) or the access token.
_NO_INPUT = {("GET", "/"), ("GET", "/page.js"), ("GET", "/page.css"), ("GET", "/api/library"), ("GET", "/api/build"),
             ("POST", "/api/labels/{label_id:int}/delete")}


def test_every_route_is_tried_with_bad_input_or_takes_none(server):
    routes = {(method, route.path) for route in server.app.routes for method in route.methods - {"HEAD"}}
    tried = {(method, path.replace("/1/", "/{media_id:int}/")) for method, path in BAD_INPUTS}
    assert routes - tried - _NO_INPUT == set()
    assert fetch(server.url + "/api/labels/abc/delete", "POST", b"", {CSRF_HEADER: csrf(server)})[0] == 404
