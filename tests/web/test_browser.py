"""The page as a person uses it, in a real headless Chromium: search by ear, judge, train, rescore, take away.

Debian's chromium is driven through Playwright's Python client (``executable_path``);
``make test`` installs it when missing.  ``make screenshots`` also copies the pictures
this test takes into docs/ for the README.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import tone_file
from tests.query.helpers import label_sirens

CHROMIUM = os.environ.get("AUDIOSCAN_CHROMIUM", "/usr/bin/chromium")
# Chromium as root in a container, with nothing reaching out to the network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def browser_page(server, tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                             env={**os.environ, "HOME": str(tmp_path)})
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.goto(server.url)
        yield page
        browser.close()


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 1000
    if os.environ.get("AUDIOSCAN_SCREENSHOTS"):
        DOCS.mkdir(exist_ok=True)
        shutil.copy(path, DOCS / name)


def test_search_listen_judge_train_rescore_and_take_away(browser_page, world, tmp_path):
    page = browser_page
    label_sirens(world)  # a few labels from the CLI; the page adds its own judgements
    page.fill("#label", "siren")
    page.dispatch_event("#label", "change")
    clip = tone_file(tmp_path / "siren-clip.wav", 4, "siren", seed=21)
    page.set_input_files("#clip", str(clip))
    page.click("#go")
    cards = page.locator("#results .card")
    expect(cards.first).to_be_visible(timeout=60_000)
    assert cards.count() >= 3
    expect(page.locator("#search-status")).to_contain_text("moments in")
    first = cards.nth(0)
    name = first.locator(".name").inner_text()
    assert name.endswith((".mkv", ".flac", ".mp3"))
    scores = [float(s) for s in page.locator("#results .score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    expect(first.locator("img")).to_have_js_property("complete", True)
    assert first.locator("img").evaluate("img => img.naturalWidth") > 0  # the spectrogram was drawn

    # Play the best hit: the audio element loads the moment, with the moment's duration.
    duration = first.locator("audio").evaluate("""a => new Promise((done, fail) => {
        a.preload = 'auto';
        a.addEventListener('loadedmetadata', () => done(a.duration));
        a.addEventListener('error', () => fail(new Error('audio failed to load')));
        a.load(); a.play().catch(() => {});
    })""")
    hit = page.evaluate("() => lists.results[0]")
    assert duration == pytest.approx(hit["end"] - hit["start"], abs=0.05)
    _shot(page, tmp_path, "search.png")

    # Judge with the keyboard and the buttons; labels show and can be undone.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("y")
    expect(first.locator(".judged")).to_contain_text("✓")
    cards.nth(1).locator("button.no").click()
    expect(cards.nth(1).locator(".judged")).to_contain_text("✗")
    expect(page.locator("#labels tr")).to_have_count(5)  # three from the CLI, two from the page
    expect(first.locator(".judged")).to_contain_text("✓")
    second = page.evaluate("() => lists.results[1]")
    mine = page.locator("#labels tr", has_text=f"{second['start']:.1f} s – {second['end']:.1f} s")
    mine.locator("[data-undo]").click()  # undo the ✗ just given
    expect(page.locator("#labels tr")).to_have_count(4)
    cards.nth(1).locator("button.no").click()
    expect(page.locator("#labels tr")).to_have_count(5)

    # Train, see the figures and warnings, rescore, page through ranked detections.
    page.click("header [data-tab=detectors]")
    page.click("#train")
    expect(page.locator("#figures")).to_contain_text("CV AP", timeout=60_000)
    page.click("#rescore")
    detections = page.locator("#detections .card")
    expect(detections.first).to_be_visible(timeout=60_000)
    expect(page.locator("#pages")).to_contain_text("detections, best first")
    ranked = [float(s) for s in page.locator("#detections .score").all_inner_texts()]
    assert ranked == sorted(ranked, reverse=True)
    expect(page.locator("#versions tr")).to_have_count(1)
    page.select_option("#summary-by", "day")  # detections over time: a chart drawn on the page
    expect(page.locator("#summary svg.chart rect").first).to_be_attached(timeout=60_000)
    expect(page.locator("#summary")).to_contain_text("detections per hour of audio, by day")
    _shot(page, tmp_path, "detectors.png")

    # Take the detections away as clips (the CLI's own code, zipped).
    with page.expect_download(timeout=120_000) as download:
        page.locator(".export[data-list=detections] [data-kind=clips]").click()
    archive = tmp_path / "clips.zip"
    download.value.save_as(archive)
    names = zipfile.ZipFile(archive).namelist()
    assert "clips.csv" in names and sum(n.endswith(".wav") for n in names) == len(ranked)
    with page.expect_download() as download:
        page.locator(".export[data-list=detections] [data-kind=raven]").click()
    raven = tmp_path / "selections.txt"
    download.value.save_as(raven)
    assert raven.read_text().startswith("Selection\tView\tChannel\tBegin Time (s)")


def test_library_view_and_a_build_from_the_page(browser_page, world, tmp_path):
    page = browser_page
    tone_file(world / "media" / "added.wav", 9, "siren", seed=5)
    page.click("header [data-tab=library]")
    expect(page.locator("#status")).to_contain_text("files indexed")
    page.fill("#folder", str(world / "media"))
    page.click("#build")
    expect(page.locator("#build-status")).to_contain_text("done: 1 indexed", timeout=120_000)
    expect(page.locator("#status")).to_contain_text("4 files indexed")
