"""Calibrated classifiers trained on stored vectors, and stored without pickles.

``logreg`` (default, the fast loop): a class-balanced logistic regression on
standardised features.  ``hgb``: the original scan's
``HistGradientBoostingClassifier(max_iter=200, max_depth=5, learning_rate=0.1,
random_state=42)``.  Both are calibrated as the plan says (isotonic with enough
examples, sigmoid otherwise, folds = min(3, positive groups, negative groups)) the
way ``CalibratedClassifierCV(ensemble=False)`` does it - one calibration map learnt
from cross-validated predictions, one base model refit on everything - but with
the folds grouped (``training``) and every fit and the calibration weighted by the
examples' sample weights, so probabilities mean what they say in the library - once
divided by the share of the sound the labels hold (``_labelled_share``: the takes nobody
labelled are among the sampled negatives).  The
same held-out predictions give the cross-validated figures (``quality``), and the
folds run one by one so a slow tree model can report its progress.

Storage is plain data: the linear model is its numbers (scaler, weights, intercept,
calibration map) in JSON; the tree model is a ``skops`` file loaded only if it holds
nothing but scikit-learn's tree types.  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import time
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Callable

import numpy as np

from audioscan.indexer.store.protocols import StoreAnnotator, StoreReader
from audioscan.models import threads
from audioscan.query import quality
from audioscan.query.errors import QueryError, QueryNotFoundError, quoted
from audioscan.query.training import TrainingSet

KINDS = ("logreg", "hgb")
FORMAT = 2  # 2: the calibration holds `labelled_share`
# Isotonic calibration needs enough of each class to learn a step function; fewer
# examples get Platt's two-parameter sigmoid.
ISOTONIC_MIN_PER_CLASS = 50
LOGREG_C = 0.01
MIN_LABELLED_SHARE = 0.2
PRIOR_TAKES = 3
_SKOPS_TRUSTED = {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}


def _base_estimator(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    if kind == "logreg":  # on standardised features; the scaler is stored beside the weights
        # Strong regularisation: a detector is usually trained from a few takes in hundreds of
        # dimensions (C=0.01 won on bench/detect_bench.py against 1, 0.1).
        return LogisticRegression(class_weight="balanced", max_iter=2000, C=LOGREG_C)
    if kind == "hgb":
        return HistGradientBoostingClassifier(max_iter=200, max_depth=5, learning_rate=0.1, random_state=42)
    raise QueryError(f"unknown classifier {quoted(kind)}; choose one of {', '.join(KINDS)}")


@dataclass
class Calibration:
    """Maps a decision score to a probability: isotonic steps or Platt's sigmoid."""

    method: str
    x: list[float] = field(default_factory=list)
    _: KW_ONLY
    y: list[float] = field(default_factory=list)
    a: float = 0.0
    b: float = 0.0
    labelled_share: float = 1.0  # how likely a window of the sound is to be labelled (see ``fit``)

    @classmethod
    def from_sklearn(cls, calibrator) -> "Calibration":
        if hasattr(calibrator, "X_thresholds_"):
            return cls("isotonic", calibrator.X_thresholds_.tolist(), y=calibrator.y_thresholds_.tolist())
        return cls("sigmoid", a=float(calibrator.a_), b=float(calibrator.b_))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.minimum(1.0, self.labelled(scores) / self.labelled_share)

    def labelled(self, scores: np.ndarray) -> np.ndarray:
        """The chance a window is one the user labelled (what the map is fitted to)."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(scores, self.x, self.y)
        return 1.0 / (1.0 + np.exp(self.a * scores + self.b))


@dataclass
class Classifier:
    """A trained, calibrated classifier as stored: everything needed to score windows."""

    name: str
    label: str
    _: KW_ONLY
    set_id: int
    kind: str
    normalize: str
    calibration: Calibration
    version: int = 0
    linear: dict[str, Any] | None = None  # scaler mean/scale, coef (arrays), intercept (a float) (logreg)
    blob: bytes | None = None  # skops bytes of the tree model (hgb)
    metrics: dict = field(default_factory=dict)
    _tree: object = None

    def decision(self, features: np.ndarray) -> np.ndarray:
        if self.linear is not None:
            scaled = (features - self.linear["mean"]) / self.linear["scale"]
            return scaled @ self.linear["coef"] + self.linear["intercept"]
        return self.tree().decision_function(features)

    def probability(self, features: np.ndarray) -> np.ndarray:
        return self.calibration(self.decision(features))

    def tree(self):
        if self._tree is None:
            import skops.io as sio

            untrusted = set(sio.get_untrusted_types(data=self.blob))
            if not untrusted <= _SKOPS_TRUSTED:
                raise QueryError(f"detector {self.name} v{self.version} holds types audioscan does not trust "
                                 f"({', '.join(sorted(untrusted - _SKOPS_TRUSTED))}); retrain it")
            self._tree = sio.loads(self.blob, trusted=sorted(untrusted))
        return self._tree

    def model_json(self) -> str:
        linear = None if self.linear is None else {k: np.asarray(v).tolist() for k, v in self.linear.items()}
        return json.dumps({"format": FORMAT, "kind": self.kind, "normalize": self.normalize,
                           "calibration": self.calibration.__dict__, "linear": linear})

    @classmethod
    def from_row(cls, name: str, version: int, *, label: str, set_id: int, kind: str, model: str, blob: bytes | None,
                 metrics: str) -> "Classifier":
        data = json.loads(model)
        if data.get("format", 0) > FORMAT:
            raise QueryError(f"detector {name} v{version} was saved by a newer audioscan; upgrade to use it")
        linear: dict[str, Any] | None = None
        if data["linear"] is not None:
            linear = {k: np.asarray(v, dtype=np.float32) for k, v in data["linear"].items()}
            linear["intercept"] = float(np.asarray(data["linear"]["intercept"]).reshape(-1)[0])
        return cls(name, label, set_id=set_id, kind=kind, normalize=data["normalize"],
                   calibration=Calibration(**data["calibration"]), version=version, linear=linear, blob=blob,
                   metrics=json.loads(metrics))


def fit(training: TrainingSet, name: str, *, label: str, set_id: int, kind: str, normalize: str,
        threshold: float = 0.5, progress: Callable[[str], None] | None = None,
        precision: float | None = None) -> Classifier:
    """Train, calibrate and cross-validate on grouped folds; raises a QueryError when the classes
    are too small.  ``progress`` hears what is being fitted (a tree model takes a while)."""
    from sklearn.base import clone
    from threadpoolctl import threadpool_limits

    clock = time.perf_counter()
    say = progress or (lambda text: None)
    X, y = training.features, training.y
    weights = training.weights if training.weights is not None else np.ones(len(y))
    groups = training.groups if training.groups is not None else np.arange(len(y))
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    splits, honest = _folds(y, groups)
    method = "isotonic" if min(positives, negatives) >= ISOTONIC_MIN_PER_CLASS else "sigmoid"
    base = _base_estimator(kind)
    mean, scale = X.mean(axis=0), X.std(axis=0)  # logreg learns on standardised features
    scale = np.where(scale > 0, scale, 1.0)
    if kind == "logreg":
        X = (X - mean) / scale
    with threadpool_limits(limits=threads.count()):
        held = np.empty(len(y))
        for k, (train, test) in enumerate(splits, start=1):
            say(f"cross-validating: fold {k} of {len(splits)}")
            held[test] = clone(base).fit(X[train], y[train], sample_weight=weights[train]).decision_function(X[test])
        say("calibrating")
        calibration = _calibrate(method, held, y, weights)
        calibration.labelled_share = _labelled_share(calibration.labelled(held), y, weights,
                                                     training.positive_regions)
        say("fitting on every example")
        estimator = clone(base).fit(X, y, sample_weight=weights)
    linear, blob = None, None
    if kind == "logreg":
        linear = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                  "coef": estimator.coef_[0].astype(np.float32), "intercept": float(estimator.intercept_[0])}
    else:
        import skops.io as sio

        blob = sio.dumps(estimator)
    metrics = {"positives": positives, "negatives": negatives, "hard_negatives": training.hard_negatives,
               "auto_negatives": training.auto_negatives, "library_negatives": training.library_negatives,
               "folds": len(splits), "grouping": training.grouping if honest else "windows",
               "calibration": method, "positive_regions": training.positive_regions,
               "base_rate": round(training.base_rate, 4)}
    metrics.update(quality.cv_figures(y, held, probabilities=calibration(held), weights=weights, threshold=threshold,
                                      precision_target=precision))
    chance = float(weights[y == 1].sum() / weights.sum())  # a random ranking's AP on these examples
    reliable, reasons = quality.verdict(metrics, chance, positive_regions=training.positive_regions,
                                        honest_folds=honest)
    metrics.update(reliable=reliable, warnings=reasons, seconds=round(time.perf_counter() - clock, 3))
    classifier = Classifier(name, label, set_id=set_id, kind=kind, normalize=normalize, calibration=calibration,
                            linear=linear, blob=blob,
                            metrics=metrics)
    classifier._tree = estimator if blob is not None else None
    return classifier


def _folds(y: np.ndarray, groups: np.ndarray) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
    """Grouped, stratified folds (min(3, positive groups, negative groups)); when the groups are
    too few for that, plain stratified folds, reported as not honest."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    folds = min(3, len(np.unique(groups[y == 1])), len(np.unique(groups[y == 0])))
    if folds >= 2:
        splits = list(StratifiedGroupKFold(folds, shuffle=True, random_state=42).split(y, y, groups))
        if all(len(np.unique(y[train])) == 2 and y[test].any() for train, test in splits):
            return splits, True
    folds = min(3, positives, negatives)
    if folds < 2:
        raise QueryError(f"calibration needs at least 2 positive and 2 negative windows (have {positives} and "
                         f"{negatives}); add labels")
    return list(StratifiedKFold(folds, shuffle=True, random_state=42).split(y, y)), False


def _calibrate(method: str, scores: np.ndarray, y: np.ndarray, weights: np.ndarray) -> Calibration:
    """Isotonic steps, or Platt's sigmoid, fitted to held-out scores with sample weights.

    Platt's method as scikit-learn implements it (smoothed targets ``(N+ + 1) / (N+ + 2)``
    and ``1 / (N- + 2)``, weighted log loss minimised by L-BFGS), so the two agree.
    """
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y, sample_weight=weights)
        return Calibration("isotonic", fitted.X_thresholds_.tolist(), y=fitted.y_thresholds_.tolist())
    from scipy.optimize import minimize
    from scipy.special import expit, xlogy

    negatives, positives = float(weights[y <= 0].sum()), float(weights[y > 0].sum())
    target = np.where(y > 0, (positives + 1) / (positives + 2), 1 / (negatives + 2))

    def loss(params: np.ndarray) -> float:
        p = expit(-(params[0] * scores + params[1]))
        return float(-(weights * (xlogy(target, p) + xlogy(1 - target, 1 - p))).sum())

    start = np.array([0.0, np.log((negatives + 1) / (positives + 1))])
    a, b = minimize(loss, start, method="L-BFGS-B", options={"gtol": 1e-6, "maxiter": 1000}).x
    return Calibration("sigmoid", a=float(a), b=float(b))


def _labelled_share(labelled: np.ndarray, y: np.ndarray, weights: np.ndarray, takes: int) -> float:
    """The share of the sound's windows the labels hold, as Elkan and Noto estimate it (KDD 2008):
    the mean held-out chance of being labelled over the labelled windows.

    Negatives are sampled from windows nobody labelled, and some of those hold the sound
    (three labelled takes of ten leave seven among them), so the calibrated chance is that of
    a window being *labelled*; divided by this share it is the chance the window holds the
    sound, and 0.5 means even odds of that.  The windows of one take say one thing, so the
    estimate rests on as many samples as there are separate labelled ``takes``: it is shrunk
    toward 1 (no correction) as if ``PRIOR_TAKES`` more takes had been fully recognised, and
    never goes under ``MIN_LABELLED_SHARE``.
    """
    positive = y == 1
    estimate = float(np.average(labelled[positive], weights=weights[positive]))
    shrunk = (takes * estimate + PRIOR_TAKES) / (takes + PRIOR_TAKES)
    return min(1.0, max(MIN_LABELLED_SHARE, shrunk))



def save(store: StoreAnnotator, classifier: Classifier) -> int:
    """Store ``classifier`` as the next version of its name (the store keeps the newest few)."""
    classifier.version = store.save_classifier(classifier.name, classifier.label, set_id=classifier.set_id,
                                               kind=classifier.kind, model=classifier.model_json(),
                                               blob=classifier.blob, metrics=classifier.metrics)
    return classifier.version


def load(store: StoreReader, name: str, *, version: int | None = None) -> Classifier:
    """The newest (or the given) version of a stored classifier."""
    row = store.classifier(name, version)
    if row is None:
        names = sorted({r.name for r in store.classifiers()})
        known = f"; trained so far: {', '.join(names)}" if names else ""
        which = f"'{name}'" + (f" version {version}" if version else "")
        raise QueryNotFoundError(f"no detector {which}; train it with 'audioscan train {name}'{known}")
    return Classifier.from_row(row.name, row.version, label=row.label, set_id=row.set_id, kind=row.kind,
                               model=row.model, blob=row.blob, metrics=row.metrics)


def self_check() -> dict[str, str]:
    """Fit both classifier kinds on four points: proves scikit-learn's compiled parts load
    (``audioscan doctor``)."""
    import sklearn

    features = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 1.0], [1.1, 1.0]])
    labels = np.array([0, 0, 1, 1])
    for kind in KINDS:
        model = _base_estimator(kind).fit(features, labels)
        if kind == "logreg" and model.predict_proba(features[-1:])[0, 1] <= 0.5:
            raise QueryError(f"scikit-learn {sklearn.__version__} fitted a wrong model; its build is broken")
    return {"scikit-learn": sklearn.__version__}
