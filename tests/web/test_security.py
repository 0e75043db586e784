"""The page's safety rules: media by id and bounded range only, CSRF on every change, a token off loopback."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from audioscan.api import Library
from audioscan.web.app import create_app
from audioscan.web.gate import CSRF_HEADER
from tests.web.conftest import Server


def fetch(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, err.read(), {k.lower(): v for k, v in err.headers.items()}


def csrf(server) -> str:
    return server.app.state.web.csrf


def test_media_is_served_by_id_and_bounded_range_only(server):
    status, body, headers = fetch(f"{server.url}/media/1/audio?start=20&end=24")
    assert status == 200 and body[:4] == b"RIFF" and headers["content-type"] == "audio/wav"
    partial, chunk, range_headers = fetch(f"{server.url}/media/1/audio?start=20&end=24", headers={"Range": "bytes=0-99"})
    assert partial == 206 and len(chunk) == 100 and range_headers["content-range"].endswith(f"/{len(body)}")
    for path in ("/media/../../../etc/passwd", "/media/1/../../catalog.duckdb", "/media/%2e%2e%2fetc/audio",
                 "/media/abc/audio?start=0&end=1"):
        code, text, _ = fetch(server.url + path)
        assert code == 404 and b"root:" not in text
    assert fetch(f"{server.url}/media/9999/audio?start=0&end=1")[0] == 404
    too_long, message, _ = fetch(f"{server.url}/media/1/audio?start=0&end=290")
    assert too_long == 400 and b"at most" in message
    outside, _, _ = fetch(f"{server.url}/media/1/audio?start=5000&end=5010")
    assert outside == 400
    spectrogram, png, _ = fetch(f"{server.url}/media/1/spectrogram.png?start=20&end=28")
    assert spectrogram == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"


def test_changes_need_the_csrf_token(server):
    body = json.dumps({"media_id": 1, "start": 20, "end": 30, "label": "siren", "positive": True}).encode()
    refused, message, _ = fetch(f"{server.url}/api/labels", "POST", body, {"content-type": "application/json"})
    assert refused == 403 and b"CSRF" in message
    forged, _, _ = fetch(f"{server.url}/api/labels", "POST", body,
                         {"content-type": "application/json", CSRF_HEADER: "guess"})
    assert forged == 403
    ok, made, _ = fetch(f"{server.url}/api/labels", "POST", body,
                        {"content-type": "application/json", CSRF_HEADER: csrf(server)})
    assert ok == 200 and json.loads(made)["id"]


def test_off_loopback_every_request_needs_the_token(world, loopback):
    with Server(create_app(Library(world / "store"), access_token="s3cret")) as server:
        assert fetch(f"{server.url}/")[0] == 401
        assert fetch(f"{server.url}/api/library")[0] == 401
        assert fetch(f"{server.url}/media/1/audio?start=0&end=4")[0] == 401
        assert fetch(f"{server.url}/api/library?token=wrong")[0] == 401
        status, page, headers = fetch(f"{server.url}/?token=s3cret")
        assert status == 200 and b"audioscan" in page and "audioscan_token" in headers.get("set-cookie", "")
        assert fetch(f"{server.url}/api/library", headers={"Cookie": "audioscan_token=s3cret"})[0] == 200


def test_the_serve_command_asks_for_a_token_off_loopback():
    from audioscan.cli.serve import is_local

    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost") and is_local("127.0.0.2")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.4")
