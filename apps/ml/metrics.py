"""Evaluation metrics for trained pipelines.

Every value returned here is a plain ``float`` or ``None`` (never NaN), so the
dicts can go straight into a JSONField or an API response. The metric registry
(``METRICS``) tells the UI which metrics exist per task type and which
direction is "better", so model selection never has to guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.inspection import permutation_importance

from apps.ml.errors import SpecError

METRICS: dict[str, dict[str, Any]] = {
    "accuracy": {"task_type": "classification", "higher_is_better": True, "label": "Accuracy"},
    "precision": {"task_type": "classification", "higher_is_better": True, "label": "Precision (macro)"},
    "recall": {"task_type": "classification", "higher_is_better": True, "label": "Recall (macro)"},
    "f1": {"task_type": "classification", "higher_is_better": True, "label": "F1 (macro)"},
    "roc_auc": {"task_type": "classification", "higher_is_better": True, "label": "ROC AUC"},
    "log_loss": {"task_type": "classification", "higher_is_better": False, "label": "Log loss"},
    "rmse": {"task_type": "regression", "higher_is_better": False, "label": "RMSE"},
    "mae": {"task_type": "regression", "higher_is_better": False, "label": "MAE"},
    "r2": {"task_type": "regression", "higher_is_better": True, "label": "R²"},
}


def clean_float(value: Any) -> float | None:
    """Return ``value`` as a JSON-safe float: NaN and ±inf become ``None``.

    JSON has no NaN; storing one would either crash serialisation or silently
    turn into an invalid document, so undefined metrics are ``None`` instead.
    """
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def classification_metrics(
    y_true: Sequence[Any] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence[Any],
) -> dict[str, float | None]:
    """Holdout/fold metrics for a classifier.

    ``proba`` must have one column per entry of ``classes`` in that order
    (columns for classes the model never saw are zeros). Precision, recall and
    F1 are macro averages so that minority classes count as much as the
    majority; ``zero_division=0`` keeps a never-predicted class from raising.
    ROC AUC is computed on ``classes[1]`` for binary problems and one-vs-rest
    macro for multiclass; it is ``None`` whenever it is undefined (e.g. only
    one class present in ``y_true``).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(classes)
    out: dict[str, float | None] = {
        "accuracy": clean_float(skm.accuracy_score(y_true, y_pred)),
        "precision": clean_float(skm.precision_score(y_true, y_pred, average="macro", zero_division=0)),
        "recall": clean_float(skm.recall_score(y_true, y_pred, average="macro", zero_division=0)),
        "f1": clean_float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "roc_auc": None,
        "log_loss": None,
    }
    if proba is None:
        return out
    proba = np.asarray(proba, dtype=float)
    out["roc_auc"] = _roc_auc(y_true, proba, labels)
    try:
        out["log_loss"] = clean_float(skm.log_loss(y_true, proba, labels=labels))
    except ValueError:
        out["log_loss"] = None
    return out


def _roc_auc(y_true: np.ndarray, proba: np.ndarray, labels: list[Any]) -> float | None:
    """ROC AUC or ``None`` when scikit-learn declares it undefined."""
    try:
        if len(labels) == 2:
            positive = y_true == labels[1]
            if positive.all() or not positive.any():
                return None
            return clean_float(skm.roc_auc_score(positive, proba[:, 1]))
        return clean_float(
            skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
        )
    except ValueError:
        return None


def regression_metrics(
    y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray
) -> dict[str, float | None]:
    """RMSE, MAE and R² (R² is ``None`` when undefined, e.g. a single row)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    r2: float | None = None
    if len(y_true) >= 2:
        r2 = clean_float(skm.r2_score(y_true, y_pred))
    return {
        "rmse": clean_float(skm.root_mean_squared_error(y_true, y_pred)),
        "mae": clean_float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": r2,
    }


def primary_metric_choices(task_type: str) -> list[tuple[str, str]]:
    """``(name, label)`` pairs usable directly as Django form/model choices."""
    return [(name, info["label"]) for name, info in METRICS.items() if info["task_type"] == task_type]


def is_better(metric: str, a: float | None, b: float | None) -> bool:
    """True when score ``a`` is strictly better than ``b`` for ``metric``.

    A missing score (``None``) is worse than any real score, so a candidate
    whose metric is undefined never wins over one where it is defined.
    """
    if metric not in METRICS:
        raise SpecError(
            f"Unknown metric {metric!r}; known metrics: {', '.join(METRICS)}.", field="primary_metric"
        )
    if a is None:
        return False
    if b is None:
        return True
    return a > b if METRICS[metric]["higher_is_better"] else a < b


# --- predictions and importance ---------------------------------------------------------------------------

MAX_IMPORTANCE_ROWS = 5000


def aligned_proba(pipeline: Any, X: Any, classes: Sequence[Any]) -> np.ndarray | None:
    """predict_proba with one column per entry of ``classes`` (zeros for classes the model never saw)."""
    if not hasattr(pipeline, "predict_proba"):
        return None
    raw = pipeline.predict_proba(X)
    out = np.zeros((len(X), len(classes)), dtype=float)
    position = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(pipeline.classes_):
        out[:, position[c]] = raw[:, j]
    return out


def permutation_importances(
    pipeline: Any, X: Any, y: np.ndarray, *, task_type: str, random_state: int
) -> list[dict[str, Any]]:
    """Drop in score (accuracy / R²) when each *input* column of ``X`` is shuffled, sorted desc.

    Works on the original columns (not one-hot outputs) so the answer is about
    the features a user chose. At most ``MAX_IMPORTANCE_ROWS`` rows (a
    reproducible sample) keep it affordable on large holdouts.
    """
    if len(X) > MAX_IMPORTANCE_ROWS:
        keep = np.sort(np.random.default_rng(random_state).choice(len(X), MAX_IMPORTANCE_ROWS, replace=False))
        X, y = X.iloc[keep], y[keep]
    scoring = "accuracy" if task_type == "classification" else "r2"
    result = permutation_importance(pipeline, X, y, scoring=scoring, n_repeats=5, random_state=random_state)
    rows = [
        {"feature": name, "importance_mean": clean_float(mean), "importance_std": clean_float(std)}
        for name, mean, std in zip(X.columns, result.importances_mean, result.importances_std, strict=True)
    ]
    rows.sort(
        key=lambda r: (-(r["importance_mean"] if r["importance_mean"] is not None else -np.inf), r["feature"])
    )
    for row in rows:
        row["scoring"] = scoring
    return rows


# --- chart data -----------------------------------------------------------------------------------------

MAX_ROC_CLASSES = 10
MAX_ROC_POINTS = 500
MAX_RESIDUAL_POINTS = 2000
RESIDUAL_BINS = 30


def _floats(values: Any) -> list[float | None]:
    return [clean_float(v) for v in np.asarray(values, dtype=float).ravel()]


def _thin(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` ROC points (always including both ends) to bound JSON size."""
    if len(fpr) <= max_points:
        return fpr, tpr
    idx = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
    return fpr[idx], tpr[idx]


def confusion_matrix_chart(y_true: Any, y_pred: Any, labels: Sequence[Any]) -> dict[str, Any]:
    """Confusion matrix over ``labels`` (rows = true class, columns = predicted)."""
    matrix = skm.confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(labels))
    return {"labels": [str(label) for label in labels], "matrix": matrix.astype(int).tolist()}


def _curve(positive: np.ndarray, score: np.ndarray) -> dict[str, Any] | None:
    if positive.all() or not positive.any():
        return None
    fpr, tpr, _ = skm.roc_curve(positive, score)
    auc = clean_float(skm.auc(fpr, tpr))
    fpr, tpr = _thin(fpr, tpr, MAX_ROC_POINTS)
    return {"fpr": _floats(fpr), "tpr": _floats(tpr), "auc": auc}


def roc_chart(y_true: Any, proba: np.ndarray | None, labels: Sequence[Any]) -> dict[str, Any] | None:
    """ROC curve points: one curve for binary, one-vs-rest per class for multiclass.

    Multiclass is capped at the ``MAX_ROC_CLASSES`` most frequent classes in
    ``y_true`` (a chart with more lines is unreadable). ``None`` when no curve is
    defined (no probabilities, or a single class in ``y_true``).
    """
    if proba is None:
        return None
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    labels = list(labels)
    if len(labels) == 2:
        curve = _curve(y_true == labels[1], proba[:, 1])
        if curve is None:
            return None
        return {"kind": "binary", "positive_label": str(labels[1]), **curve}
    counts = [(int((y_true == label).sum()), i) for i, label in enumerate(labels)]
    order = [i for count, i in sorted(counts, key=lambda t: (-t[0], t[1])) if count > 0]
    curves = []
    for i in order[:MAX_ROC_CLASSES]:
        curve = _curve(y_true == labels[i], proba[:, i])
        if curve is not None:
            curves.append({"label": str(labels[i]), **curve})
    if not curves:
        return None
    return {
        "kind": "ovr",
        "curves": curves,
        "n_classes": len(labels),
        "truncated": len(order) > MAX_ROC_CLASSES,
    }


def residual_charts(y_true: Any, y_pred: Any, seed: int) -> dict[str, Any]:
    """A reproducible sample of (y_true, y_pred) points and a histogram of all residuals."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    n = len(y_true)
    if n > MAX_RESIDUAL_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(n, MAX_RESIDUAL_POINTS, replace=False))
    else:
        idx = np.arange(n)
    residuals = y_true - y_pred
    finite = residuals[np.isfinite(residuals)]
    if finite.size:
        try:
            counts, edges = np.histogram(finite, bins=RESIDUAL_BINS)
        except ValueError:  # (near-)constant residuals: no room for 30 finite-width bins
            lo, hi = float(finite.min()), float(finite.max())
            counts, edges = np.histogram(finite, bins=1, range=(lo - 0.5, hi + 0.5))
    else:
        counts, edges = np.zeros(0, dtype=int), np.zeros(0)
    return {
        "residuals": {"y_true": _floats(y_true[idx]), "y_pred": _floats(y_pred[idx])},
        "residual_histogram": {"edges": _floats(edges), "counts": counts.astype(int).tolist()},
    }
