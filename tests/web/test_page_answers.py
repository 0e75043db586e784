"""What the page answers to hostile requests, through the real app: errors as they were written
(quotes kept), uploads named as the user named them, and an export bounded as the README says and
holding every moment it was given or refusing the one it cannot."""

from __future__ import annotations

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from audioscan.api.previews import MAX_SPAN_SECONDS
from audioscan.indexer.media.samples import write_media
from audioscan.web.exports import MAX_CLIPS_SECONDS, MAX_MOMENTS
from audioscan.web.gate import CSRF_HEADER
from tests.web.test_hostile import BAD_INPUTS, post
from tests.web.test_security import csrf, fetch

README = Path(__file__).resolve().parents[2] / "README.md"
LONG = {"media_id": 2}  # long.mkv of the world: 300 s (1 is knock.mp3, 3 sub/other.flac)


def error_of(answer) -> str:
    status, text, _ = answer
    assert status >= 400, text[:200]
    return json.loads(text)["error"]


# ------------------------------------------------------------------ errors as written
def test_field_errors_keep_their_quotes(server):
    said = error_of(post(server, "/api/labels", {**LONG, "start": 20, "end": 30, "label": "siren", "positive": "yes"}))
    assert said == "'positive' must be true or false"


@pytest.mark.parametrize("route", [route for route in BAD_INPUTS if route[0] == "POST" and route[1] != "/api/search"])
def test_no_error_loses_a_quote(server, route):
    """Every hostile body of every JSON route: each quote an error opens, it closes."""
    for bad in BAD_INPUTS[route]:
        said = error_of(post(server, route[1], bad))
        assert said.count("'") % 2 == 0 and not re.match(r"^\w+'", said), (bad, said)


# ------------------------------------------------------------------ uploads
def upload(server, name: str, data: bytes):
    boundary = "audioscanboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"clip\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return fetch(server.url + "/api/search", "POST", body,
                 {"content-type": f"multipart/form-data; boundary={boundary}", CSRF_HEADER: csrf(server)})


def silent_wav() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return write_media(Path(folder) / "s.wav", np.zeros(16_000, dtype=np.float32), rate=16_000).read_bytes()


@pytest.mark.parametrize("name,shown", [("door.wav", "door.wav"), ("C:\\Users\\me\\door.wav", "door.wav"),
                                        ("../../etc/door.wav", "door.wav"), ("x" * 300 + ".wav", "the uploaded clip"),
                                        ("a\u2028b.wav", "the uploaded clip"), ("a\u200bb.wav", "the uploaded clip")])
@pytest.mark.parametrize("content", ["garbage", "silence"])
def test_an_uploaded_clip_is_named_as_the_user_named_it(server, name, shown, content):
    data = b"not audio at all" * 50 if content == "garbage" else silent_wav()
    said = error_of(upload(server, name.encode("utf-8").decode("latin-1"), data))
    assert shown in said and tempfile.gettempdir() not in said and "tmp" not in said, said


# ------------------------------------------------------------------ the export's bounds
def export(server, kind: str, moments: list[dict], length: float | None = None):
    return post(server, "/api/export", {"kind": kind, "moments": moments, "length": length})


def test_the_readme_states_the_exports_bounds():
    text = " ".join(README.read_text(encoding="utf-8").split())
    assert f"({MAX_SPAN_SECONDS:g} s at most)" in text
    assert f"{MAX_MOMENTS} moments at most" in text and f"{MAX_CLIPS_SECONDS / 60:g} minutes of clips" in text


@pytest.mark.parametrize("kind", ["clips", "csv", "raven", "audacity"])
def test_a_moment_outside_its_file_is_refused_by_its_place(server, kind):
    good = {**LONG, "start": 20, "end": 24}
    for outside in ({**LONG, "start": 5000, "end": 5004}, {**LONG, "start": 0, "end": 1_000_000},
                    {**LONG, "start": 300, "end": 300.5}):
        said = error_of(export(server, kind, [good, good, outside]))
        assert said.startswith("'moments[2]'") and "outside its file long.mkv" in said


@pytest.mark.parametrize("moments,length,says", [
    ([{**LONG, "start": 0, "end": MAX_SPAN_SECONDS + 1}], None, "'moments[0]' would cut a clip of 121 s"),
    ([{**LONG, "start": 10, "end": 10}], None, "'moments[0]' would cut a clip of 0 s"),
    ([{**LONG, "start": 0, "end": 8}], MAX_SPAN_SECONDS + 1, "'length' must lie between"),
    ([{**LONG, "start": t, "end": t + 100} for t in range(0, 200, 10)], None, "2000 s in all"),
    ([{**LONG, "start": 1, "end": 2}] * (MAX_MOMENTS + 1), 8, f"more than {MAX_MOMENTS} items")])
def test_clips_are_bounded_per_moment_in_all_and_in_number(server, moments, length, says):
    assert says in error_of(export(server, "clips", moments, length))


def test_the_bounds_admit_what_the_page_sends(server):
    """The page asks for its whole list (200 at most) as 8 s clips."""
    status, data, _ = export(server, "clips", [{**LONG, "start": t, "end": t + 8} for t in range(0, 280, 20)], 8)
    assert status == 200 and len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 14 + 1


def test_a_moment_that_cannot_be_cut_is_named_not_dropped(server, world):
    (world / "media" / "long.mkv").unlink()
    said = error_of(export(server, "clips", [{**LONG, "start": 20, "end": 24}]))
    assert said.startswith("'moments[0]' could not be cut") and "long.mkv" in said
