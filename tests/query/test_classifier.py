import dataclasses
import json
import numpy as np
import pytest

from audioscan.indexer.store.store import Store
from audioscan.query import classifier as classifiers
from audioscan.query.errors import QueryError
from audioscan.query.training import TrainingSet


def _toy(n_pos: int, n_neg: int, dim: int = 16, seed: int = 0) -> TrainingSet:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_pos + n_neg, dim)).astype(np.float32)
    x[:n_pos, :3] += 1.5
    y = np.r_[np.ones(n_pos, np.int8), np.zeros(n_neg, np.int8)]
    return TrainingSet(x, y, window_ids=np.arange(len(y)), positives=n_pos, hard_negatives=0, auto_negatives=n_neg)


@pytest.mark.parametrize("kind", classifiers.KINDS)
@pytest.mark.parametrize("size,method", [((20, 60), "sigmoid"), ((80, 240), "isotonic")])
def test_stored_numbers_reproduce_sklearns_calibrated_probabilities(kind, size, method):
    """The JSON/skops numbers give what scikit-learn's CalibratedClassifierCV(ensemble=False) gives
    on the same folds (Platt's fit is an optimisation, so it agrees to optimiser precision)."""
    from sklearn.calibration import CalibratedClassifierCV

    data = _toy(*size)
    trained = classifiers.fit(data, "t", label="t", set_id=1, kind=kind, normalize="file")
    assert trained.metrics["calibration"] == method and trained.metrics["folds"] == 3
    assert 0.5 < trained.metrics["cv_roc_auc"] <= 1 and 0 < trained.metrics["cv_ap"] <= 1
    splits, honest = classifiers._folds(data.y, np.arange(len(data.y)))
    mean, scale = data.features.mean(0), data.features.std(0)
    scaled = (lambda x: (x - mean) / scale) if kind == "logreg" else (lambda x: x)
    reference = CalibratedClassifierCV(classifiers._base_estimator(kind), method=method, ensemble=False,
                                       cv=splits).fit(scaled(data.features), data.y)
    restored = classifiers.Classifier.from_row("t", 1, label="t", set_id=1, kind=kind, model=trained.model_json(),
                                               blob=trained.blob, metrics="{}")
    probe = _toy(10, 10, seed=1).features
    expected = reference.predict_proba(scaled(probe))[:, 1]
    labelled = restored.calibration.labelled(restored.decision(probe))
    assert np.allclose(labelled, expected, atol=1e-5 if method == "isotonic" else 2e-3)
    assert np.allclose(restored.probability(probe), trained.probability(probe), atol=1e-6)
    share = restored.calibration.labelled_share
    assert classifiers.MIN_LABELLED_SHARE <= share <= 1
    assert np.allclose(restored.probability(probe), np.minimum(1, labelled / share))


def test_sample_weights_restore_the_base_rate():
    """Negatives sampled at 1 in 10 and weighted 10 give probabilities of the true prior, not the sample's."""
    rng = np.random.default_rng(3)
    n_pos, n_neg_all = 300, 6000  # true positive rate 300 / 6300 = 4.8 %
    x_pos = rng.normal(0.8, 1.0, (n_pos, 4))
    x_neg = rng.normal(0.0, 1.0, (n_neg_all, 4))
    sampled = x_neg[rng.choice(n_neg_all, n_neg_all // 10, replace=False)]
    x = np.vstack([x_pos, sampled]).astype(np.float32)
    y = np.r_[np.ones(n_pos, np.int8), np.zeros(len(sampled), np.int8)]
    weighted = TrainingSet(x, y, window_ids=np.arange(len(y)), positives=n_pos, hard_negatives=0,
                           auto_negatives=len(sampled), weights=np.r_[np.ones(n_pos), np.full(len(sampled), 10.0)])
    plain = TrainingSet(x, y, window_ids=np.arange(len(y)), positives=n_pos, hard_negatives=0,
                        auto_negatives=len(sampled))
    population = np.vstack([x_pos, x_neg]).astype(np.float32)
    def labelled(data: TrainingSet, name: str) -> float:  # the calibrated chance of a window being labelled
        trained = classifiers.fit(data, name, label=name, set_id=1, kind="logreg", normalize="none")
        return trained.calibration.labelled(trained.decision(population)).mean()

    mean_weighted, mean_plain = labelled(weighted, "w"), labelled(plain, "p")
    assert abs(mean_weighted - n_pos / (n_pos + n_neg_all)) < 0.015
    assert mean_plain > 2 * mean_weighted  # unweighted, the sample's 1:2 odds leak into every probability


def test_probabilities_count_the_takes_nobody_labelled():
    """Three windows of ten labelled, the rest among the sampled negatives: the chance of a window
    being labelled is about a third of the chance it holds the sound, and the share the labels
    hold (Elkan and Noto's estimate, from 40 separate takes) gives that back, so 0.5 again
    means even odds."""
    rng = np.random.default_rng(5)
    sound = rng.normal(3.0, 0.5, (400, 4))
    room = rng.normal(0.0, 0.5, (4000, 4))
    labelled, unlabelled = sound[:120], sound[120:]  # 30 % of the sound's windows labelled
    negatives = np.vstack([room, unlabelled])
    x = np.vstack([labelled, negatives]).astype(np.float32)
    y = np.r_[np.ones(len(labelled), np.int8), np.zeros(len(negatives), np.int8)]
    data = TrainingSet(x, y, window_ids=np.arange(len(y)), positives=len(labelled), hard_negatives=0,
                       auto_negatives=len(negatives), positive_regions=40)
    trained = classifiers.fit(data, "pu", label="pu", set_id=1, kind="logreg", normalize="none")
    assert 0.2 <= trained.calibration.labelled_share <= 0.45
    held_out = rng.normal(3.0, 0.5, (200, 4)).astype(np.float32)
    assert trained.calibration.labelled(trained.decision(held_out)).mean() < 0.5  # a take looks unlikely...
    assert trained.probability(held_out).mean() > 0.7  # ...until the unlabelled takes are counted
    assert trained.probability(rng.normal(0.0, 0.5, (200, 4)).astype(np.float32)).mean() < 0.05
    # Three takes are three samples of the share: the estimate is drawn toward no correction.
    few = classifiers.fit(dataclasses.replace(data, positive_regions=3), "pu", label="pu", set_id=1, kind="logreg",
                          normalize="none").calibration.labelled_share
    assert trained.calibration.labelled_share < few < 1


def test_a_detector_that_cannot_tell_is_saved_but_flagged():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 8)).astype(np.float32)  # labels carry no signal at all
    y = np.r_[np.ones(15, np.int8), np.zeros(45, np.int8)]
    groups = np.repeat(np.arange(12), 5)
    trained = classifiers.fit(TrainingSet(x, y, window_ids=np.arange(60), positives=15, hard_negatives=0,
                                          auto_negatives=45, groups=groups, positive_regions=2, base_rate=0.25),
                              "r", label="r", set_id=1, kind="logreg", normalize="none")
    assert trained.metrics["reliable"] is False
    assert any("region" in w for w in trained.metrics["warnings"])
    assert any("ROC AUC" in w or "chance" in w for w in trained.metrics["warnings"])


def test_tree_models_are_stored_with_skops_and_untrusted_types_are_refused(monkeypatch):
    trained = classifiers.fit(_toy(20, 60), "t", label="t", set_id=1, kind="hgb", normalize="file")
    assert trained.blob[:2] == b"PK"  # a skops zip archive, not a pickle
    restored = classifiers.Classifier.from_row("t", 1, label="t", set_id=1, kind="hgb", model=trained.model_json(),
                                               blob=trained.blob, metrics="{}")
    assert restored.probability(_toy(2, 2).features).shape == (4,)
    monkeypatch.setattr(classifiers, "_SKOPS_TRUSTED", set())  # as if the file named a type we do not know
    stranger = classifiers.Classifier.from_row("t", 1, label="t", set_id=1, kind="hgb", model=trained.model_json(),
                                               blob=trained.blob, metrics="{}")
    with pytest.raises(QueryError, match="does not trust"):
        stranger.probability(_toy(2, 2).features)


def test_too_few_examples_and_unknown_kinds_are_sentences():
    with pytest.raises(QueryError, match="at least 2 positive and 2 negative"):
        classifiers.fit(_toy(1, 10), "t", label="t", set_id=1, kind="logreg", normalize="file")
    with pytest.raises(QueryError, match="unknown classifier"):
        classifiers.fit(_toy(5, 10), "t", label="t", set_id=1, kind="svm", normalize="file")


def test_versions_are_kept_up_to_five(world):
    with Store.open(world / "store", annotate=True) as store:
        for _ in range(7):
            classifiers.save(store,
                             classifiers.fit(_toy(5, 10), "gag", label="gag", set_id=1, kind="logreg",
                                             normalize="file"))
        with store.connect() as con:
            versions = [r[0] for r in con.execute("SELECT version FROM classifiers ORDER BY version").fetchall()]
        assert versions == [3, 4, 5, 6, 7]
        assert classifiers.load(store, "gag").version == 7 and classifiers.load(store, "gag", version=4).version == 4
        with pytest.raises(QueryError, match="no detector 'nope'"):
            classifiers.load(store, "nope")


def test_detectors_saved_before_the_labelled_share_keep_their_probabilities_and_newer_ones_are_refused():
    trained = classifiers.fit(_toy(20, 60), "t", label="t", set_id=1, kind="logreg", normalize="file")
    old = json.loads(trained.model_json())
    old["format"] = 1
    del old["calibration"]["labelled_share"]
    restored = classifiers.Classifier.from_row("t", 1, label="t", set_id=1, kind="logreg", model=json.dumps(old),
                                               blob=None, metrics="{}")
    probe = _toy(10, 10, seed=1).features
    assert np.allclose(restored.probability(probe), trained.calibration.labelled(trained.decision(probe)))
    newer = {**old, "format": classifiers.FORMAT + 1}
    with pytest.raises(QueryError, match="newer audioscan"):
        classifiers.Classifier.from_row("t", 1, label="t", set_id=1, kind="logreg", model=json.dumps(newer), blob=None,
                                        metrics="{}")
