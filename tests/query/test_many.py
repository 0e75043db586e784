"""``rescore --all``: every detector over one set's windows in one run, each at its own threshold;
the table holds exactly what each detector alone gives for those windows."""

from __future__ import annotations

import json

import audioscan
from tests.query.helpers import cli, label_sirens


def _two_detectors(world) -> None:
    label_sirens(world)
    assert cli(world, "labels", "add", "long.mkv", "100", "110", "hum").exit_code == 0
    assert cli(world, "labels", "add", "long.mkv", "20", "30", "hum", "--negative").exit_code == 0
    assert cli(world, "train", "siren", "--threshold", "0.4").exit_code == 0
    assert cli(world, "train", "hum", "--threshold", "0.7").exit_code == 0


def test_every_detector_scores_the_windows_at_its_own_threshold(world):
    _two_detectors(world)
    result = cli(world, "rescore", "--all", "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(set(row) == {"path", "start", "end", "channel", "siren", "hum"} for row in rows)
    assert all(row["siren"] >= 0.4 or row["hum"] >= 0.7 for row in rows)
    library = audioscan.open(world / "store")
    alone = {name: {(m.path, m.start): round(m.score, 4) for m in library.detector(name).windows()}
             for name in ("siren", "hum")}
    for row in rows:
        assert row["siren"] == alone["siren"][(row["path"], row["start"])]
        assert row["hum"] == alone["hum"][(row["path"], row["start"])]
    fired = {key for key, score in alone["siren"].items() if score >= 0.4} | \
        {key for key, score in alone["hum"].items() if score >= 0.7}
    assert {(row["path"], row["start"]) for row in rows} == fired


def test_top_labels_per_window_and_what_all_refuses(world):
    _two_detectors(world)
    rows = json.loads(cli(world, "rescore", "--all", "--top", "1", "--format", "json").stdout)
    assert rows and all(set(row) == {"path", "start", "end", "channel", "label_1", "score_1"} for row in rows)
    assert {row["label_1"] for row in rows} <= {"siren", "hum"}
    for args, words in ((["--all", "--threshold", "0.3"], "--threshold go with one detector's moments"),
                        (["--all", "--per-window"], "--per-window go with"),
                        ([], "give the detector NAME")):
        refused = cli(world, "rescore", *args)
        assert refused.exit_code == 2 and words in refused.stderr, (args, refused.stderr)


def test_train_precision_sets_the_detectors_own_threshold_that_rescore_all_uses(world):
    label_sirens(world)
    trained = cli(world, "train", "siren", "--precision", "0.8", "--format", "json")
    assert trained.exit_code == 0, trained.stderr
    figures = json.loads(trained.stdout)
    detector = audioscan.open(world / "store").detector("siren")
    assert figures["threshold"] == detector.threshold_for(0.8) and figures["cv_precision"] >= 0.8
    rows = json.loads(cli(world, "rescore", "--all", "--format", "json").stdout)
    assert rows and all(row["siren"] >= figures["threshold"] for row in rows)
    both = cli(world, "train", "siren", "--precision", "0.8", "--threshold", "0.3")
    assert both.exit_code == 2 and "not both" in both.stderr
