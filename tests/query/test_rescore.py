import json

import numpy as np
import pytest

from audioscan.indexer.store.store import Store
from audioscan.query import classifier as classifiers
from audioscan.query.export import OWNED_RECORD
from audioscan.query.rescore import Scored, all_scores, detections
from audioscan.query.training import Normalizer
from tests.conftest import SIRENS
from tests.query.helpers import cli, label_sirens


def test_rescore_finds_the_unlabelled_siren_and_exports(world):
    label_sirens(world)
    trained = cli(world, "train", "siren", "--format", "json")
    report = json.loads(trained.stdout)
    assert set(report) >= {"name", "label", "model", "classifier", "positives", "negatives", "cv_ap",
                           "cv_roc_auc", "seconds"}
    found = json.loads(cli(world, "rescore", "siren", "--format", "json").stdout)
    assert {"path", "start", "end", "score", "label", "peak", "onset", "offset", "decision", "datetime",
            "site", "channel"} == set(found[0])
    assert all(h["start"] <= h["onset"] <= h["peak"] <= h["offset"] <= h["end"] for h in found)
    # The siren at 200-210 in long.mkv was never labelled: it must be detected.
    assert any(h["path"].endswith("long.mkv") and h["start"] < 205 < h["end"] for h in found)
    assert all(h["score"] >= 0.5 for h in found)
    assert [h["score"] for h in found] == sorted((h["score"] for h in found), reverse=True)
    top = json.loads(cli(world, "rescore", "siren", "--format", "json", "--top", "1").stdout)
    assert top == found[:1]
    csv_text = cli(world, "rescore", "siren", "--format", "csv").stdout
    assert csv_text.splitlines()[0] == "path,start,end,score,label,peak,onset,offset,decision,datetime,site,channel" and len(csv_text.splitlines()) == len(found) + 1
    out = cli(world, "rescore", "siren", "--format", "audacity", "--out-dir", str(world / "tracks"))
    tracks = sorted(p.name for p in (world / "tracks").iterdir() if p.name != OWNED_RECORD)  # our record of them
    assert out.exit_code == 0 and tracks == sorted({h["path"].rsplit("/", 1)[1].rsplit(".", 1)[0] + ".txt"
                                                     for h in found})
    line = (world / "tracks" / "long.txt").read_text().splitlines()[0].split("\t")
    assert len(line) == 3 and line[2].startswith("siren ")


def test_overlapping_windows_above_the_threshold_are_one_detection_with_the_best_score():
    media = np.array([1, 1, 1, 1, 1, 1, 2, 2])
    starts = np.array([0.0, 1, 2, 3, 4, 5, 0, 1])
    scores = np.array([0.6, 0.9, 0.7, 0.4, 0.8, 0.2, 0.55, 0.4])
    mixed = np.zeros(8, np.int16)
    hits = detections(Scored(np.arange(8), media, starts=starts, ends=starts + 8, scores=scores, decisions=scores,
                             channels=mixed), {1: "a", 2: "b"},
                      threshold=0.5)
    assert [(h.path, h.score) for h in hits] == [("a", 0.9), ("b", 0.55)]  # one sound each
    assert hits[0].start <= 1.0 and hits[0].end >= 9.0


@pytest.mark.parametrize("normalize", ["file", "global"])
def test_the_linear_fast_path_equals_normalise_then_predict(world, normalize):
    label_sirens(world)
    cli(world, "train", "siren", "--normalize", normalize)
    with Store.open(world / "store") as store:
        info = store.find_set()
        trained = classifiers.load(store, "siren")
        snapshot = store.snapshot(info, stats=True)
        fast = all_scores(snapshot, trained)
        assert len(snapshot.segments) > 1  # scored segment by segment
        ids, vectors = snapshot.ids, snapshot.vectors()
        table = {"id": snapshot.ids, "media_id": snapshot.media_ids}
        media = table["media_id"][np.searchsorted(table["id"], ids)]
        assert trained.normalize == normalize
        slow = trained.probability(Normalizer.load(snapshot, normalize).apply(vectors, media))
    order = np.argsort(ids)
    assert np.array_equal(fast.ids, ids[order])
    assert np.abs(fast.scores - slow[order]).max() < 1e-4, np.abs(fast.scores - slow[order]).max()


def test_hgb_rescores_too(world):
    label_sirens(world)
    assert cli(world, "train", "siren", "--classifier", "hgb").exit_code == 0
    found = json.loads(cli(world, "rescore", "siren", "--format", "json", "--threshold", "0", "--top", "3").stdout)
    assert found and all(any(h["path"].endswith(name) for name in SIRENS) for h in found)
