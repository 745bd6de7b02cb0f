"""A window of production traffic judged against its training data: per-feature drift,
drift of the predictions, and performance on the rows that got their ground truth.

Plain Python over what a prediction log holds (feature dicts, predictions,
probabilities, labels as JSON gave them), so the monitoring app only reads the
window and stores the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from apps.ml import drift as D
from apps.ml import metrics as M

MIN_LABELLED_ROWS = 10


@dataclass(frozen=True)
class DriftSettings:
    """The statistic and threshold per column kind ("auto": by kind and reference size)."""

    numeric_method: str = "auto"
    numeric_threshold: float | None = None
    categorical_method: str = "auto"
    categorical_threshold: float | None = None
    min_rows: int = 100

    def for_kind(self, kind: str) -> tuple[str | None, float | None]:
        method, threshold = (
            (self.numeric_method, self.numeric_threshold)
            if kind == "numeric"
            else (self.categorical_method, self.categorical_threshold)
        )
        return (None if method == "auto" else method), threshold


def _column(kind: str, raw: Sequence[Any]) -> np.ndarray:
    if kind == "numeric":
        return pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(dtype=float)
    return np.array([None if v is None else str(v) for v in raw], dtype=object)


def feature_verdicts(
    signature: Sequence[Mapping[str, Any]],
    reference: Mapping[str, Mapping[str, Any]],
    features: Sequence[Mapping[str, Any] | None],
    settings: DriftSettings,
) -> list[D.FeatureDrift]:
    """Drift of each signature feature that has a reference summary, over the window's inputs.

    A feature no row carries is reported as missing (``values`` None), one that every
    row carries as null as all-null, by :func:`apps.ml.drift.feature_drift`.
    """
    rows = [f or {} for f in features]
    results = []
    for feature in signature:
        name = feature["name"]
        ref = reference.get(name)
        if ref is None:
            continue
        method, threshold = settings.for_kind(ref["kind"])
        values = None
        if rows and any(name in f for f in rows):
            values = _column(ref["kind"], [f.get(name) for f in rows])
        results.append(D.feature_drift(name, ref, values, method=method, threshold=threshold,
                                       min_rows=settings.min_rows))
    return results


def prediction_drift(target_reference: Mapping[str, Any] | None, predictions: Sequence[Any], *,
                     min_rows: int) -> dict[str, Any]:
    """The predictions against the training target's summary ({} without one or without rows)."""
    if target_reference is None or not predictions:
        return {}
    values = _column(target_reference["kind"], list(predictions))
    return D.feature_drift("prediction", target_reference, values, min_rows=min_rows).to_dict()


def live_performance(
    task_type: str,
    predictions: Sequence[Any],
    probabilities: Sequence[float | None],
    labels: Sequence[Any],
    classes: Sequence[str],
) -> dict[str, Any]:
    """Metrics on the rows with a label; fewer than ten labelled rows give only their count.

    ``probabilities`` is the probability of each row's predicted class, as logged; a
    binary task turns it into the positive class's probability for ROC AUC and log loss.
    """
    labelled = [(p, q, y) for p, q, y in zip(predictions, probabilities, labels, strict=True) if y is not None]
    if len(labelled) < MIN_LABELLED_ROWS:
        return {"labelled_rows": len(labelled)}
    if task_type == "classification":
        return {"labelled_rows": len(labelled), "metrics": _classification(labelled, classes)}
    y = pd.to_numeric(pd.Series([r[2] for r in labelled], dtype=object), errors="coerce").to_numpy(float)
    pred = pd.to_numeric(pd.Series([r[0] for r in labelled], dtype=object), errors="coerce").to_numpy(float)
    keep = np.isfinite(y) & np.isfinite(pred)
    if keep.sum() < MIN_LABELLED_ROWS:
        return {"labelled_rows": int(keep.sum())}
    return {"labelled_rows": len(labelled), "metrics": M.regression_metrics(y[keep], pred[keep])}


def _classification(labelled: list[tuple[Any, float | None, Any]], classes: Sequence[str]) -> dict[str, Any]:
    y = np.array([str(r[2]) for r in labelled], dtype=object)
    pred = np.array([str(r[0]) for r in labelled], dtype=object)
    labels = sorted(set(classes) | set(y.tolist()) | set(pred.tolist()))
    proba = None
    if len(labels) == 2 and all(r[1] is not None for r in labelled):
        positive = labels[1]
        p_pos = np.array([r[1] if str(r[0]) == positive else 1 - r[1] for r in labelled])
        proba = np.column_stack([1 - p_pos, p_pos])
    metrics = M.classification_metrics(y, pred, proba, labels)
    if proba is None:
        metrics["roc_auc"] = metrics["log_loss"] = None
    return metrics


def performance_breached(metric: str, value: float | None, threshold: float | None) -> bool | None:
    """Whether ``value`` is on the wrong side of ``threshold`` (None when either is unknown)."""
    if threshold is None or value is None:
        return None
    higher = M.METRICS.get(metric, {}).get("higher_is_better", True)
    return value < threshold if higher else value > threshold
