"""Detectors that tell the truth: library negatives, grouped folds, ranked and split detections."""

from __future__ import annotations

import json

import numpy as np

from audioscan.indexer.store.store import Store
from audioscan.query import classifier as classifiers
from audioscan.query.rescore import Scored, detections
from audioscan.query.training import training_set
from tests.query.helpers import cli, label_sirens


def test_positives_only_on_a_short_file_trains_with_seeded_library_negatives(world):
    cli(world, "labels", "add", "other.flac", "30", "40", "siren")  # a 60 s file: no window is 120 s away
    with Store.open(world / "store") as store:
        snapshot = store.snapshot(store.find_set(), stats=True)
        first = training_set(store, snapshot, label="siren")
        again = training_set(store, snapshot, label="siren")
    assert np.array_equal(first.window_ids, again.window_ids)
    other = next(m.id for m in snapshot.media.values() if m.rel.endswith("other.flac"))
    library = first.window_ids[first.y == 0]
    at = snapshot.positions(library)
    media = snapshot.media_ids[at]
    assert other not in media and len(np.unique(media)) == 2  # spread over the other files
    # The whole rest of the library is the background: one window per 4 s of every other file.
    elsewhere = snapshot.media_ids != other
    grid = sum(len(np.unique(np.floor(snapshot.starts[snapshot.media_ids == m] / 4 + 1e-9)))
               for m in np.unique(snapshot.media_ids[elsewhere]))
    assert first.auto_negatives == 0 and first.library_negatives == grid > 3 * first.positives
    assert all(s % 4 == 0 for s in snapshot.starts[at])
    result = cli(world, "train", "siren", "--format", "json")
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["library_negatives"] == first.library_negatives
    assert report["reliable"] is False and "region" in " ".join(report["warnings"])
    assert "not reliable" in result.stderr and "suggest" in result.stderr


def test_sampled_negatives_carry_the_odds_of_the_library_they_stand_for(world):
    """Each sampled negative weighs the unlabelled windows of the library over the number drawn,
    so the weighted share of positives is the library's, not that of the labelled file."""
    cli(world, "labels", "add", "other.flac", "30", "40", "siren")
    with Store.open(world / "store") as store:
        snapshot = store.snapshot(store.find_set(), stats=True)
        data = training_set(store, snapshot, label="siren")
        alone = training_set(store, snapshot, label="siren", negatives="labelled", neg_margin=0.0)
    negatives = data.weights[data.y == 0]
    assert np.allclose(negatives, negatives[0])
    unlabelled = len(snapshot.ids) - data.positives
    assert np.isclose(negatives.sum(), unlabelled)
    library_odds = data.weights[data.y == 1].sum() / data.weights.sum()
    file_odds = alone.weights[alone.y == 1].sum() / alone.weights.sum()
    assert library_odds < file_odds / 3  # the 60 s file is under a quarter of the library


def test_grouped_folds_never_put_overlapping_windows_on_both_sides(world):
    label_sirens(world)
    cli(world, "labels", "add", "long.mkv", "200", "210", "siren")
    with Store.open(world / "store") as store:
        snapshot = store.snapshot(store.find_set(), stats=True)
        data = training_set(store, snapshot, label="siren")
    at = snapshot.positions(data.window_ids)
    media, starts, ends = snapshot.media_ids[at], snapshot.starts[at], snapshot.ends[at]
    splits, honest = classifiers._folds(data.y, data.groups)
    assert honest and len(splits) >= 2
    for train, test in splits:
        for i in test:
            clash = (media[train] == media[i]) & (starts[train] < ends[i]) & (ends[train] > starts[i])
            assert not clash.any()


def test_one_stretch_of_positives_is_grouped_by_stretch():
    from audioscan.query.training import _groups

    class Snap:
        media_ids = np.zeros(6, np.int64)
        starts = np.array([0.0, 1, 2, 40, 41, 80])
        ends = starts + 8

    groups, grouping = _groups(Snap, np.arange(6), np.array([1, 1, 1, 0, 0, 0]))
    assert grouping == "stretch" and list(groups) == [0, 0, 0, 1, 1, 2]


def test_two_humps_are_two_ranked_moments_split_at_their_valley():
    starts = np.arange(0.0, 30.0)
    scores = np.r_[np.linspace(0.2, 0.9, 10), np.linspace(0.8, 0.1, 10), np.linspace(0.2, 0.7, 10)]
    scored = Scored(np.arange(30), np.zeros(30, np.int64), starts=starts, ends=starts + 8, scores=scores,
                    decisions=scores, channels=np.zeros(30, np.int16))
    ranked = detections(scored, {0: "a"}, threshold=0.0)
    assert len(ranked) == 2  # two humps: one moment each
    assert ranked[0].score == scores.max() and ranked[0].start <= 9 < ranked[0].end
    assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
    assert ranked[1].start >= 19 and abs(ranked[1].score - 0.7) < 1e-9  # the second peak is its own moment
    assert 9 <= ranked[0].peak <= 17 and ranked[1].peak >= 29  # where the windows scoring best overlap
    spans = sorted((h.start, h.end) for h in ranked)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # pieces of one run never overlap


def test_a_run_without_a_valley_is_one_moment_however_long():
    starts = np.arange(0.0, 30.0)
    plateau = np.r_[np.linspace(0.2, 0.9, 5), np.full(20, 0.9) + np.linspace(0, 0.01, 20), np.linspace(0.9, 0.2, 5)]
    scored = Scored(np.arange(30), np.zeros(30, np.int64), starts=starts, ends=starts + 8, scores=plateau,
                    decisions=plateau, channels=np.zeros(30, np.int16))
    found = detections(scored, {0: "a"}, threshold=0.0)
    assert len(found) == 1 and found[0].start <= 12 and found[0].end >= 32  # one moment, however long


def test_threshold_zero_ranks_the_library_and_precision_picks_a_threshold(world):
    label_sirens(world)
    cli(world, "labels", "add", "long.mkv", "200", "210", "siren")
    report = json.loads(cli(world, "train", "siren", "--format", "json").stdout)
    assert set(report["thresholds"]) == {"0.5", "0.8", "0.9"}
    ranked = json.loads(cli(world, "rescore", "siren", "--threshold", "0", "--format", "json").stdout)
    assert len(ranked) > 10
    spans = sorted((h["path"], h["start"], h["end"]) for h in ranked)  # one moment per hump, never overlapping
    assert all(a[0] != b[0] or a[2] <= b[1] for a, b in zip(spans, spans[1:]))
    windows = cli(world, "rescore", "siren", "--per-window", "--format", "csv").stdout.splitlines()
    with Store.open(world / "store") as store:
        assert len(windows) - 1 == len(store.snapshot(store.find_set()))
    reached = report["thresholds"]["0.8"]
    picked = cli(world, "rescore", "siren", "--precision", "0.8", "--format", "json")
    if reached is None:
        assert picked.exit_code == 1 and "never reached precision" in picked.stderr
    else:
        assert picked.exit_code == 0 and all(h["score"] >= reached for h in json.loads(picked.stdout))


def test_the_chance_level_of_ap_is_the_share_of_positives_it_was_measured_on():
    from audioscan.query.quality import verdict

    figures = {"cv_ap": 0.71, "cv_roc_auc": 0.9}
    # Labels covering whole files once made the "positive rate" 1.0 and the warning ask for AP 2.0.
    assert verdict(figures, 0.6, positive_regions=5, honest_folds=True) == (True, [])
    reliable, reasons = verdict(figures, 0.4, positive_regions=5, honest_folds=True)
    assert not reliable and "0.40" in reasons[0]
