"""A window of logged traffic judged without Django: drift verdicts and live performance,
checked against scipy and scikit-learn on the same values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from apps.ml.drift_summary import build_reference
from apps.ml.monitor import (
    DriftSettings,
    feature_verdicts,
    live_performance,
    performance_breached,
    prediction_drift,
)

SIGNATURE = [{"name": "x", "role": "numeric"}, {"name": "color", "role": "categorical"}]


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    return {
        "x": build_reference(rng.normal(0, 1, 500), "numeric"),
        "color": build_reference(rng.choice(["red", "green", "blue"], 500), "categorical"),
    }


def window(rows: int, *, shift: float = 0.0, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    xs = rng.normal(shift, 1, rows)
    colors = rng.choice(["red", "green", "blue"], rows)
    return [{"x": float(x), "color": str(c)} for x, c in zip(xs, colors, strict=True)]


def test_a_small_reference_is_judged_by_ks_equal_to_scipy(reference):
    rng = np.random.default_rng(0)
    ref_values = rng.normal(0, 1, 500)
    features = window(300, shift=1.0)
    verdicts = {v.name: v for v in feature_verdicts(SIGNATURE, reference, features, DriftSettings(min_rows=50))}
    x = verdicts["x"].to_dict()
    expected = stats.ks_2samp(ref_values, [f["x"] for f in features])
    assert x["method"] == "ks" and x["drifted"] is True
    assert x["statistic"] == pytest.approx(expected.statistic, abs=1e-9)
    assert verdicts["color"].to_dict()["drifted"] is False


def test_the_policy_settings_choose_the_statistic_and_threshold(reference):
    settings = DriftSettings(numeric_method="psi", numeric_threshold=5.0, min_rows=50)
    x = feature_verdicts(SIGNATURE, reference, window(300, shift=1.0), settings)[0].to_dict()
    assert x["method"] == "psi" and x["threshold"] == 5.0 and x["drifted"] is False


def test_a_feature_no_row_carries_is_missing_and_one_that_is_always_null_is_all_null(reference):
    features = [{"x": None} for _ in range(100)]
    verdicts = {v.name: v.to_dict() for v in feature_verdicts(SIGNATURE, reference, features, DriftSettings())}
    assert verdicts["color"]["status"] == "missing" and verdicts["x"]["status"] == "all_null"


def test_too_few_rows_give_no_verdict_and_text_in_a_numeric_column_is_ignored(reference):
    features = [{"x": "n/a", "color": "red"}] * 40 + [{"x": "1.5", "color": "red"}] * 20
    x = feature_verdicts(SIGNATURE, reference, features, DriftSettings(min_rows=30))[0].to_dict()
    assert x["status"] == "not_enough_data" and x["drifted"] is None


def test_features_without_a_reference_are_left_out(reference):
    signature = [*SIGNATURE, {"name": "new_column", "role": "numeric"}]
    assert [v.name for v in feature_verdicts(signature, reference, window(50), DriftSettings())] == ["x", "color"]


def test_prediction_drift_uses_the_targets_summary(reference):
    assert prediction_drift(None, ["red"], min_rows=1) == {}
    assert prediction_drift(reference["color"], [], min_rows=1) == {}
    result = prediction_drift(reference["color"], ["red"] * 200, min_rows=50)
    assert result["name"] == "prediction" and result["drifted"] is True


def test_binary_live_performance_equals_scikit_learn():
    rng = np.random.default_rng(3)
    labels = rng.choice(["no", "yes"], 200).tolist()
    p_yes = np.clip(np.where(np.array(labels) == "yes", 0.7, 0.3) + rng.normal(0, 0.2, 200), 0.01, 0.99)
    predictions = ["yes" if p > 0.5 else "no" for p in p_yes]
    logged = [p if pred == "yes" else 1 - p for p, pred in zip(p_yes, predictions, strict=True)]  # of the predicted class
    result = live_performance("classification", predictions, logged, labels, ["no", "yes"])
    assert result["labelled_rows"] == 200
    assert result["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(labels, predictions), abs=1e-12)
    assert result["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, p_yes), abs=1e-12)


def test_rows_without_a_label_are_left_out_and_fewer_than_ten_give_only_a_count():
    result = live_performance("classification", ["a"] * 30, [None] * 30, ["a"] * 9 + [None] * 21, ["a", "b"])
    assert result == {"labelled_rows": 9}


def test_a_multiclass_window_has_no_probability_metrics():
    labels = ["a", "b", "c"] * 10
    result = live_performance("classification", labels, [0.9] * 30, labels, ["a", "b", "c"])
    assert result["metrics"]["accuracy"] == 1.0 and result["metrics"]["roc_auc"] is None


def test_regression_live_performance_equals_scikit_learn_and_skips_unusable_values():
    rng = np.random.default_rng(4)
    y = rng.normal(10, 2, 50)
    pred = y + rng.normal(0, 1, 50)
    labels = [*y.tolist(), "broken"]
    predictions = [*pred.tolist(), 1.0]
    result = live_performance("regression", predictions, [None] * 51, labels, [])
    assert result["labelled_rows"] == 51
    assert result["metrics"]["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred), abs=1e-12)


def test_a_breach_follows_the_direction_of_the_metric():
    assert performance_breached("accuracy", 0.7, 0.8) is True
    assert performance_breached("accuracy", 0.9, 0.8) is False
    assert performance_breached("rmse", 3.0, 2.0) is True
    assert performance_breached("rmse", None, 2.0) is None
    assert performance_breached("rmse", 3.0, None) is None
