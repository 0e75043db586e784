"""Calibrated classifiers trained on stored vectors, and stored without pickles.

``logreg`` (default, the fast loop): a standard-scaled, class-balanced logistic
regression.  ``hgb``: the original scan's
``HistGradientBoostingClassifier(max_iter=200, max_depth=5, learning_rate=0.1,
random_state=42)``.  Both are wrapped in ``CalibratedClassifierCV`` as the plan says
(isotonic with enough examples, sigmoid otherwise, folds = min(3, positives,
negatives)), with ``ensemble=False``: one base model refit on everything plus one
calibration map learnt from cross-validated predictions.  Cross-validated AP and
ROC AUC come from the same folds.

Storage is plain data: the linear model is its numbers (scaler, weights, intercept,
calibration map) in JSON; the tree model is a ``skops`` file loaded only if it holds
nothing but scikit-learn's tree types.  Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import numpy as np

from audioscan.query.errors import QueryError
from audioscan.query.training import TrainingSet

KINDS = ("logreg", "hgb")
FORMAT = 1
# Isotonic calibration needs enough of each class to learn a step function; fewer
# examples get Platt's two-parameter sigmoid.
ISOTONIC_MIN_PER_CLASS = 50
_SKOPS_TRUSTED = {"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}


def _base_estimator(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000))
    if kind == "hgb":
        return HistGradientBoostingClassifier(max_iter=200, max_depth=5, learning_rate=0.1, random_state=42)
    raise QueryError(f"unknown classifier '{kind}'; choose one of {', '.join(KINDS)}")


@dataclass
class Calibration:
    """Maps a decision score to a probability: isotonic steps or Platt's sigmoid."""

    method: str
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    a: float = 0.0
    b: float = 0.0

    @classmethod
    def from_sklearn(cls, calibrator) -> "Calibration":
        if hasattr(calibrator, "X_thresholds_"):
            return cls("isotonic", calibrator.X_thresholds_.tolist(), calibrator.y_thresholds_.tolist())
        return cls("sigmoid", a=float(calibrator.a_), b=float(calibrator.b_))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return np.interp(scores, self.x, self.y)
        return 1.0 / (1.0 + np.exp(self.a * scores + self.b))


@dataclass
class Classifier:
    """A trained, calibrated classifier as stored: everything needed to score windows."""

    name: str
    label: str
    set_id: int
    kind: str
    normalize: str
    calibration: Calibration
    version: int = 0
    linear: dict | None = None  # scaler mean/scale, coef, intercept (logreg)
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
                raise QueryError(f"classifier {self.name} v{self.version} holds types audioscan does not trust "
                                 f"({', '.join(sorted(untrusted - _SKOPS_TRUSTED))}); retrain it")
            self._tree = sio.loads(self.blob, trusted=sorted(untrusted))
        return self._tree

    def model_json(self) -> str:
        linear = None if self.linear is None else {k: np.asarray(v).tolist() for k, v in self.linear.items()}
        return json.dumps({"format": FORMAT, "kind": self.kind, "normalize": self.normalize,
                           "calibration": self.calibration.__dict__, "linear": linear})

    @classmethod
    def from_row(cls, name: str, version: int, label: str, set_id: int, kind: str, model: str, blob: bytes | None,
                 metrics: str) -> "Classifier":
        data = json.loads(model)
        if data.get("format", 0) > FORMAT:
            raise QueryError(f"classifier {name} v{version} was saved by a newer audioscan; upgrade to use it")
        linear = None
        if data["linear"] is not None:
            linear = {k: np.asarray(v, dtype=np.float32) for k, v in data["linear"].items()}
            linear["intercept"] = float(np.asarray(data["linear"]["intercept"]).reshape(-1)[0])
        return cls(name, label, set_id, kind, data["normalize"], Calibration(**data["calibration"]), version,
                   linear, blob, json.loads(metrics))


def fit(training: TrainingSet, name: str, label: str, set_id: int, kind: str, normalize: str) -> Classifier:
    """Train, calibrate and cross-validate; raises a QueryError when the classes are too small."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.metrics import average_precision_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    clock = time.perf_counter()
    X, y = training.features, training.y
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    folds = min(3, positives, negatives)
    if folds < 2:
        raise QueryError(f"calibration needs at least 2 positive and 2 negative windows (have {positives} and "
                         f"{negatives}); add labels")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=42)
    base = _base_estimator(kind)
    method = "isotonic" if min(positives, negatives) >= ISOTONIC_MIN_PER_CLASS else "sigmoid"
    held_out = cross_val_predict(base, X, y, cv=splitter, method="decision_function")
    calibrated = CalibratedClassifierCV(base, method=method, cv=splitter, ensemble=False).fit(X, y)
    fitted = calibrated.calibrated_classifiers_[0]
    estimator = fitted.estimator
    linear, blob = None, None
    if kind == "logreg":
        scaler, logistic = estimator.steps[0][1], estimator.steps[1][1]
        linear = {"mean": scaler.mean_.astype(np.float32), "scale": scaler.scale_.astype(np.float32),
                  "coef": logistic.coef_[0].astype(np.float32), "intercept": float(logistic.intercept_[0])}
    else:
        import skops.io as sio

        blob = sio.dumps(estimator)
    metrics = {"positives": positives, "negatives": negatives, "hard_negatives": training.hard_negatives,
               "auto_negatives": training.auto_negatives, "folds": folds, "calibration": method,
               "cv_ap": round(float(average_precision_score(y, held_out)), 4),
               "cv_roc_auc": round(float(roc_auc_score(y, held_out)), 4),
               "seconds": round(time.perf_counter() - clock, 3)}
    classifier = Classifier(name, label, set_id, kind, normalize, Calibration.from_sklearn(fitted.calibrators[0]),
                            linear=linear, blob=blob, metrics=metrics)
    classifier._tree = estimator if blob is not None else None
    return classifier


def save(store, classifier: Classifier) -> int:
    """Store ``classifier`` as the next version of its name (the store keeps the newest few)."""
    classifier.version = store.save_classifier(classifier.name, classifier.label, classifier.set_id,
                                               classifier.kind, classifier.model_json(), classifier.blob,
                                               classifier.metrics)
    return classifier.version


def load(store, name: str, version: int | None = None) -> Classifier:
    """The newest (or the given) version of a stored classifier."""
    row = store.classifier(name, version)
    if row is None:
        names = sorted({r.name for r in store.classifiers()})
        known = f"; trained so far: {', '.join(names)}" if names else ""
        which = f"'{name}'" + (f" version {version}" if version else "")
        raise QueryError(f"no classifier {which}; train it with 'audioscan train {name}'{known}")
    return Classifier.from_row(row.name, row.version, row.label, row.set_id, row.kind, row.model, row.blob,
                               row.metrics)
