"""The page searches every set the store holds, combined as `search -m A -m B` combines them, or one
chosen set, and keeps working as sets come and go while it runs."""

from __future__ import annotations

import json
import urllib.parse

from audioscan.api import Library
from audioscan.web.app import create_app
from audioscan.web.gate import CSRF_HEADER
from tests.web.conftest import Server
from tests.web.test_security import csrf, fetch


def search(server, **fields) -> tuple[int, dict]:
    body = urllib.parse.urlencode(fields).encode()
    status, text, _ = fetch(server.url + "/api/search", "POST", body,
                            {"content-type": "application/x-www-form-urlencoded", CSRF_HEADER: csrf(server)})
    return status, json.loads(text)


def test_the_page_searches_one_set_every_set_and_follows_sets_as_they_come_and_go(world, loopback):
    library = Library(world / "store")
    with Server(create_app(library)) as server:
        status, one = search(server, media_id=1, at=25, k=3)
        assert status == 200 and len(one["hits"]) == 3
        library.build(world / "media", models=["LOGMEL"], window=4.0, hop=2.0)  # a second set while serving
        names = [info.name for info in library.sets()]
        assert len(names) == 2
        status, combined = search(server, media_id=1, at=25, k=3)
        expected = library.search((library.media()[1].path, 25.0), k=3, model=names)
        assert status == 200 and [(h["path"], h["start"], h["end"]) for h in combined["hits"]] == [
            (h.path, h.start, h.end) for h in expected]
        for name in names:
            status, chosen = search(server, media_id=1, at=25, k=3, sets=name)
            alone = library.search((library.media()[1].path, 25.0), k=3, model=[name])
            assert status == 200 and [(h["path"], h["start"], h["end"]) for h in chosen["hits"]] == [
                (h.path, h.start, h.end) for h in alone]
        library.remove_set(names[1])
        assert search(server, media_id=1, at=25, k=3)[0] == 200
        status, gone = search(server, media_id=1, at=25, k=3, sets=names[1])
        assert status == 404 and names[1] in gone["error"]
