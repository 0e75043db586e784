"""Messages that say what applies: query clips that cannot stand for a sound are refused by one rule
for every model (a silent clip names the options that chose its part only when they were given; a
clip shorter than the shortest window is refused whatever the model), and status during a build
says a build is running."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from audioscan.models import registry
from audioscan.query.errors import QueryError
from audioscan.query.search import MIN_QUERY_SECONDS, embed_clip
from audioscan.indexer.media.samples import write_media
from tests.conftest import tone_file


def _no_model(*args, **kwargs):
    raise AssertionError("a refused clip must be refused before any model loads")


@pytest.fixture
def no_model(monkeypatch):
    monkeypatch.setattr(registry, "load_model", _no_model)


def _info(name: str) -> SimpleNamespace:
    return SimpleNamespace(model=name, sample_rate=registry.spec(name).sample_rate, foreign=False)


@pytest.mark.parametrize("name", registry.names())
def test_a_clip_shorter_than_the_shortest_window_is_refused_for_every_model(tmp_path, name, no_model):
    info = _info(name)
    clip = tone_file(tmp_path / "c.wav", 2, "siren", info.sample_rate)
    for seconds in (1 / info.sample_rate, MIN_QUERY_SECONDS / 2):  # one sample; half the minimum
        with pytest.raises(QueryError, match=rf"a query clip must last at least {MIN_QUERY_SECONDS:g} s") as raised:
            embed_clip(clip, info, start=1.0, end=1.0 + seconds)
        assert "\n" not in str(raised.value)


def test_a_silent_clip_names_only_the_options_given(tmp_path, no_model):
    info = _info("LOGMEL")
    silent = write_media(tmp_path / "s.wav", np.zeros(32_000, dtype=np.float32), rate=16_000)
    with pytest.raises(QueryError) as whole:
        embed_clip(silent, info)
    assert "is silent" in str(whole.value) and "start" not in str(whole.value) and "end" not in whole.value.options
    with pytest.raises(QueryError) as part:
        embed_clip(silent, info, start=0.5)
    assert part.value.options == ("start",)
    with pytest.raises(QueryError) as ending:
        embed_clip(silent, info, start=0.0, end=1.5)
    assert ending.value.options == ("end",)
    with pytest.raises(QueryError) as both:
        embed_clip(silent, info, start=0.5, end=1.5)
    assert both.value.options == ("start", "end")


def test_status_during_a_build_says_a_build_is_running(tmp_path):
    """A build holds the writer lock: status says so, rather than advising to run a build."""
    import json
    from pathlib import Path

    from click.testing import CliRunner

    from audioscan.cli import main
    from audioscan.indexer.store.lock import WriterLock
    from tests.indexer.helpers import build_once

    if not Path("/proc/locks").exists():
        pytest.skip("the kernel's lock table is read on Linux only")
    tone_file(tmp_path / "lib" / "a.wav", 2, "siren", 16_000)
    build_once(tmp_path / "store", tmp_path / "lib")
    tone_file(tmp_path / "lib" / "b.wav", 2, "knock", 16_000)
    status = ["--store", str(tmp_path / "store"), "index", "status"]
    assert json.loads(CliRunner().invoke(main, [*status, "--format", "json"]).output)["writer"] is None
    lock = WriterLock(tmp_path / "store")
    lock.acquire()
    try:
        shown = CliRunner().invoke(main, status).output
        held = json.loads(CliRunner().invoke(main, [*status, "--format", "json"]).output)["writer"]
    finally:
        lock.release()
    assert "a build is running (process" in shown and "index build" not in shown
    assert held.startswith("process ")
