"""Metric functions agree with scikit-learn and are JSON-safe; the registry knows directions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn import metrics as skm

from apps.ml import metrics as M
from apps.ml.errors import SpecError


def test_binary_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes"], 200)
    p_yes = np.clip((y == "yes") * 0.3 + rng.random(200) * 0.7, 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes > 0.5, "yes", "no")
    out = M.classification_metrics(y, pred, proba, ["no", "yes"])
    assert out == {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
        "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
        "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y == "yes", p_yes),
        "log_loss": skm.log_loss(y, proba, labels=["no", "yes"]),
    }


def test_multiclass_classification_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    labels = ["a", "b", "c"]
    y = rng.choice(labels, 150)
    proba = rng.dirichlet([1, 1, 1], 150)
    pred = np.array(labels)[proba.argmax(1)]
    out = M.classification_metrics(y, pred, proba, labels)
    assert out["roc_auc"] == skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=labels)
    assert out["log_loss"] == skm.log_loss(y, proba, labels=labels)
    assert out["f1"] == skm.f1_score(y, pred, average="macro", zero_division=0)


def test_undefined_metrics_are_none_not_nan() -> None:
    y = np.array(["a", "a", "a"])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    out = M.classification_metrics(y, np.array(["a", "b", "a"]), proba, ["a", "b"])
    assert out["roc_auc"] is None
    assert out["precision"] == skm.precision_score(y, ["a", "b", "a"], average="macro", zero_division=0)
    assert M.classification_metrics(y, y, None, ["a", "b"])["log_loss"] is None
    reg = M.regression_metrics([1.0], [2.0])
    assert reg == {"rmse": 1.0, "mae": 1.0, "r2": None}
    json.dumps(out, allow_nan=False)


def test_regression_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=100)
    pred = y + rng.normal(scale=0.3, size=100)
    assert M.regression_metrics(y, pred) == {
        "rmse": skm.root_mean_squared_error(y, pred),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred),
    }


def test_clean_float() -> None:
    assert M.clean_float(np.float32(0.5)) == 0.5
    assert M.clean_float(float("nan")) is None
    assert M.clean_float(np.inf) is None
    assert M.clean_float(None) is None
    assert M.clean_float("x") is None


def test_registry_and_choices() -> None:
    for info in M.METRICS.values():
        assert set(info) == {"task_type", "higher_is_better", "label"}
    assert [n for n, _ in M.primary_metric_choices("classification")] == [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
    ]
    assert dict(M.primary_metric_choices("regression")) == {"rmse": "RMSE", "mae": "MAE", "r2": "R²"}
    assert M.primary_metric_choices("ranking") == []


def test_is_better_knows_direction() -> None:
    assert M.is_better("accuracy", 0.9, 0.8)
    assert not M.is_better("accuracy", 0.8, 0.8)
    assert M.is_better("log_loss", 0.2, 0.3)
    assert M.is_better("rmse", 1.0, 2.0) and not M.is_better("rmse", 2.0, 1.0)
    assert M.is_better("r2", 0.1, None) and not M.is_better("r2", None, 0.1)
    with pytest.raises(SpecError):
        M.is_better("bogus", 1, 2)


def test_charts_are_json_safe() -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(["a", "b"], 3000)
    score = rng.random(3000)
    proba = np.column_stack([1 - score, score])
    roc = M.roc_chart(y, proba, ["a", "b"])
    assert roc is not None and roc["kind"] == "binary"
    assert len(roc["fpr"]) <= M.MAX_ROC_POINTS and roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0
    assert math.isclose(roc["auc"], skm.roc_auc_score(y == "b", score))
    assert M.roc_chart(np.array(["a"] * 5), np.full((5, 2), 0.5), ["a", "b"]) is None
    labels = [f"c{i}" for i in range(12)]
    y12 = rng.choice(labels, 600)
    roc12 = M.roc_chart(y12, rng.dirichlet(np.ones(12), 600), labels)
    assert roc12["kind"] == "ovr" and len(roc12["curves"]) == 10 and roc12["truncated"]
    cm = M.confusion_matrix_chart(["a", "b", "b"], ["a", "a", "b"], ["a", "b"])
    assert cm == {"labels": ["a", "b"], "matrix": [[1, 0], [1, 1]]}
    yr = rng.normal(size=5000)
    charts = M.residual_charts(yr, yr + 0.1, seed=0)
    assert len(charts["residuals"]["y_true"]) == M.MAX_RESIDUAL_POINTS
    assert sum(charts["residual_histogram"]["counts"]) == 5000
    assert charts == M.residual_charts(yr, yr + 0.1, seed=0)
    json.dumps([roc, roc12, cm, charts], allow_nan=False)
