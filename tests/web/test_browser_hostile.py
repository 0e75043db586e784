"""Names from strangers stay text in a real browser: a library whose file names and labels are
markup is searched, judged and listed, and no script of theirs runs."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect, sync_playwright

from audioscan.api import Library
from audioscan.web.app import create_app
from tests.conftest import tone_file
from tests.web.conftest import Server
from tests.web.test_browser import CHROMIUM, FLAGS

# Each would set window.pwned (or open a dialog) if it were ever parsed as markup.
HOSTILE_FILES = ['x"><img src=x onerror="window.pwned=1">.wav', "<svg onload=window.pwned=2>.flac"]
BROKEN_FILE = "<img src=x onerror=window.pwned=3>.mp3"  # not audio: listed as failed on the Library tab
HOSTILE_LABEL = "<img src=x onerror=window.pwned=4>"


@pytest.fixture
def hostile_server(tmp_path, loopback):
    media = tmp_path / "media"
    for number, name in enumerate(HOSTILE_FILES):
        tone_file(media / name, 12, "siren", seed=number)
    (media / BROKEN_FILE).write_bytes(b"<script>window.pwned=5</script>" * 40)
    library = Library(tmp_path / "store")
    library.build(media, models=["LOGMEL"])
    library.labels.add(HOSTILE_FILES[0], 1, end=6, label=HOSTILE_LABEL)
    with Server(create_app(library)) as running:
        yield running


def test_hostile_names_and_labels_are_shown_as_text(hostile_server, tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                             env={**os.environ, "HOME": str(tmp_path)})
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(hostile_server.url)
        page.fill("#label", HOSTILE_LABEL)
        page.dispatch_event("#label", "change")
        expect(page.locator("#labels td").nth(1)).to_have_text(HOSTILE_FILES[0])  # the labels table
        page.set_input_files("#clip", str(tone_file(tmp_path / "clip.wav", 4, "siren", seed=9)))
        page.click("#go")
        cards = page.locator("#results .card")
        expect(cards.first).to_be_visible(timeout=60_000)
        shown = {cards.nth(i).locator(".name").text_content() for i in range(cards.count())}
        assert set(HOSTILE_FILES) <= shown
        assert cards.first.locator(".name").get_attribute("title").endswith(tuple(HOSTILE_FILES))
        cards.first.locator(".yes").click()  # judged under the hostile label, listed again
        expect(page.locator("#labels tr")).to_have_count(2)
        page.click("header [data-tab=library]")
        expect(page.locator("#status li")).to_contain_text(BROKEN_FILE)
        page.click("header [data-tab=detectors]")
        page.click("#train")
        expect(page.locator("#train-report")).not_to_have_text("training…", timeout=60_000)
        assert page.evaluate("window.pwned") is None and dialogs == []
        assert page.locator("#results img:not([alt=spectrogram]), #labels img, #status img, svg").count() == 0
        browser.close()
