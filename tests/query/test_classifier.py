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
    return TrainingSet(x, y, np.arange(len(y)), n_pos, 0, n_neg)


@pytest.mark.parametrize("kind", classifiers.KINDS)
@pytest.mark.parametrize("size,method", [((20, 60), "sigmoid"), ((80, 240), "isotonic")])
def test_stored_numbers_reproduce_sklearns_calibrated_probabilities(kind, size, method):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold

    data = _toy(*size)
    trained = classifiers.fit(data, "t", "t", 1, kind, "file")
    assert trained.metrics["calibration"] == method and trained.metrics["folds"] == 3
    assert 0.5 < trained.metrics["cv_roc_auc"] <= 1 and 0 < trained.metrics["cv_ap"] <= 1
    reference = CalibratedClassifierCV(classifiers._base_estimator(kind), method=method, ensemble=False,
                                       cv=StratifiedKFold(3, shuffle=True, random_state=42)).fit(data.features, data.y)
    restored = classifiers.Classifier.from_row("t", 1, "t", 1, kind, trained.model_json(), trained.blob, "{}")
    probe = _toy(10, 10, seed=1).features
    assert np.allclose(restored.probability(probe), reference.predict_proba(probe)[:, 1], atol=1e-5)


def test_tree_models_are_stored_with_skops_and_untrusted_types_are_refused(monkeypatch):
    trained = classifiers.fit(_toy(20, 60), "t", "t", 1, "hgb", "file")
    assert trained.blob[:2] == b"PK"  # a skops zip archive, not a pickle
    restored = classifiers.Classifier.from_row("t", 1, "t", 1, "hgb", trained.model_json(), trained.blob, "{}")
    assert restored.probability(_toy(2, 2).features).shape == (4,)
    monkeypatch.setattr(classifiers, "_SKOPS_TRUSTED", set())  # as if the file named a type we do not know
    stranger = classifiers.Classifier.from_row("t", 1, "t", 1, "hgb", trained.model_json(), trained.blob, "{}")
    with pytest.raises(QueryError, match="does not trust"):
        stranger.probability(_toy(2, 2).features)


def test_too_few_examples_and_unknown_kinds_are_sentences():
    with pytest.raises(QueryError, match="at least 2 positive and 2 negative"):
        classifiers.fit(_toy(1, 10), "t", "t", 1, "logreg", "file")
    with pytest.raises(QueryError, match="unknown classifier"):
        classifiers.fit(_toy(5, 10), "t", "t", 1, "svm", "file")


def test_versions_are_kept_up_to_five(world):
    with Store.open(world / "store") as store:
        for _ in range(7):
            classifiers.save(store, classifiers.fit(_toy(5, 10), "gag", "gag", 1, "logreg", "file"))
        with store.connect() as con:
            versions = [r[0] for r in con.execute("SELECT version FROM classifiers ORDER BY version").fetchall()]
        assert versions == [3, 4, 5, 6, 7]
        assert classifiers.load(store, "gag").version == 7 and classifiers.load(store, "gag", 4).version == 4
        with pytest.raises(QueryError, match="no classifier 'nope'"):
            classifiers.load(store, "nope")
