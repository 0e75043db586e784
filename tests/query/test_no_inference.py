"""search --from, train, rescore and suggest read stored vectors only: no model is ever built."""

import json

import pytest

from audioscan.models import registry
from audioscan.models.logmel import LogMelModel
from tests.query.helpers import cli, label_sirens


@pytest.fixture
def no_models(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was constructed or run")

    monkeypatch.setattr(registry, "load_model", refuse)
    monkeypatch.setattr(LogMelModel, "__init__", refuse)
    monkeypatch.setattr(LogMelModel, "embed", refuse)


def test_the_whole_loop_runs_without_a_model(world, no_models):
    label_sirens(world)
    hits = json.loads(cli(world, "search", "--from", "long.mkv", "--at", "25", "-k", "5", "--format", "json").stdout)
    assert hits and not any(h["path"].endswith("long.mkv") and h["start"] < 25 < h["end"] for h in hits)
    assert cli(world, "train", "siren").exit_code == 0
    first = json.loads(cli(world, "rescore", "siren", "--format", "json", "--threshold", "0").stdout)
    suggestions = json.loads(cli(world, "suggest", "siren", "-n", "5", "--format", "json").stdout)
    assert len(suggestions) == 5
    # One more label, a retrain, and the scores change - still without any embedding call.
    assert cli(world, "labels", "add", "knock.mp3", "10", "20", "siren", "--negative").exit_code == 0
    assert cli(world, "train", "siren").exit_code == 0
    second = json.loads(cli(world, "rescore", "siren", "--format", "json", "--threshold", "0").stdout)
    assert [h["score"] for h in first] != [h["score"] for h in second]
