"""How good a detector is, measured honestly, and said plainly.

Figures come from cross-validated predictions over grouped folds (no window in a
test fold overlaps one in its training folds), weighted like the library (each
automatic negative stands for its share of the unlabelled windows), so the AP and
the precision a user reads are what they will see when they rescore.  The
precision-recall curve is kept (thinned) with the classifier, so ``rescore
--precision 0.9`` can pick its threshold without retraining.
"""

from __future__ import annotations

import numpy as np

from audioscan.query.errors import QueryError

PRECISION_TARGETS = (0.5, 0.8, 0.9)
MIN_ROC_AUC = 0.7
MIN_AP_OVER_BASE = 2.0
MIN_POSITIVE_REGIONS = 3
_CURVE_POINTS = 101


def cv_figures(y: np.ndarray, scores: np.ndarray, *, probabilities: np.ndarray, weights: np.ndarray,
               threshold: float, precision_target: float | None = None) -> dict:
    """AP, ROC AUC, precision and recall at ``threshold`` (or at the lowest threshold whose
    cross-validated precision reaches ``precision_target``: the detector's own, which ``rescore
    --all`` uses), thresholds for the target precisions, and a thinned precision-recall curve over
    calibrated probabilities."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    figures: dict[str, object] = {
        "cv_ap": round(float(average_precision_score(y, scores, sample_weight=weights)), 4),
        "cv_roc_auc": round(float(roc_auc_score(y, scores, sample_weight=weights)), 4),
    }
    precision, recall, cuts = precision_recall_curve(y, probabilities, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if precision_target is not None:
        reached = _lowest_threshold(precision, cuts, precision_target)
        if reached is None:
            raise QueryError(f"no threshold reached precision {precision_target:g} in cross-validation; label more "
                             "examples (see 'audioscan suggest') or give `threshold`")
        threshold = reached
    figures.update(at_threshold(y, probabilities, weights=weights, threshold=threshold))
    keep = np.unique(np.linspace(0, len(cuts) - 1, min(len(cuts), _CURVE_POINTS)).round().astype(int))
    figures["pr_curve"] = {"threshold": np.round(cuts[keep], 6).tolist(),
                           "precision": np.round(precision[keep], 4).tolist(),
                           "recall": np.round(recall[keep], 4).tolist()}
    figures["thresholds"] = {f"{p:g}": _lowest_threshold(precision, cuts, p) for p in PRECISION_TARGETS}
    return figures


def at_threshold(y: np.ndarray, probabilities: np.ndarray, *, weights: np.ndarray, threshold: float) -> dict:
    found = probabilities >= threshold
    true_positive = float(weights[found & (y == 1)].sum())
    chosen, relevant = float(weights[found].sum()), float(weights[y == 1].sum())
    return {"threshold": threshold,
            "cv_precision": round(true_positive / chosen, 4) if chosen else None,
            "cv_recall": round(true_positive / relevant, 4) if relevant else None}


def _lowest_threshold(precision: np.ndarray, cuts: np.ndarray, target: float) -> float | None:
    """The lowest threshold from which precision stays at or above ``target`` (most recall), if any."""
    bad = np.flatnonzero(precision < target)
    start = bad[-1] + 1 if len(bad) else 0
    return round(float(cuts[start]), 6) if start < len(cuts) else None


def threshold_for_precision(metrics: dict, target: float) -> float | None:
    """The threshold whose cross-validated precision reaches ``target``, from the stored curve."""
    curve = metrics.get("pr_curve")
    if not curve:
        return None
    return _lowest_threshold(np.asarray(curve["precision"]), np.asarray(curve["threshold"]), target)


def verdict(metrics: dict, chance: float, *, positive_regions: int, honest_folds: bool) -> tuple[bool, list[str]]:
    """Whether to trust the detector, and if not, why (each reason says what to do)."""
    reasons = []
    if positive_regions < MIN_POSITIVE_REGIONS:
        reasons.append(f"only {positive_regions} separate positive region(s); label at least "
                       f"{MIN_POSITIVE_REGIONS} distinct examples")
    if not honest_folds:
        reasons.append("every positive lies in one stretch, so the cross-validation is optimistic; "
                       "label the sound in more places")
    if metrics["cv_roc_auc"] < MIN_ROC_AUC:
        reasons.append(f"cross-validated ROC AUC {metrics['cv_roc_auc']:.2f} is below {MIN_ROC_AUC}: "
                       "it barely tells the sound from the rest")
    # ``chance`` is the AP a random ranking gets on the (weighted) cross-validated examples;
    # above one half, twice it is out of reach for any detector and says nothing.
    if 0 < chance < 1 / MIN_AP_OVER_BASE and metrics["cv_ap"] < MIN_AP_OVER_BASE * chance:
        reasons.append(f"cross-validated AP {metrics['cv_ap']:.2f} is under {MIN_AP_OVER_BASE:g}x the positive "
                       f"rate ({chance:.2f}): little better than chance")
    return not reasons, reasons
