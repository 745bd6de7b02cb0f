"""Algorithm catalog: description shape, scikit-learn defaults, parameter cleaning, grids, skops trust list."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from threadpoolctl import threadpool_limits

from apps.ml import catalog
from apps.ml.catalog import CATALOG, clean_params, expand_grid, get_algorithm, list_algorithms
from apps.ml.errors import SpecError
from apps.ml.persist import trusted_types
from apps.ml.train import TrainingSpec, build_pipeline

EXPECTED = {
    "classification": [
        "logistic_regression",
        "random_forest_classifier",
        "hist_gradient_boosting_classifier",
        "knn_classifier",
    ],
    "regression": [
        "ridge",
        "random_forest_regressor",
        "hist_gradient_boosting_regressor",
        "linear_regression",
    ],
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny fits: OpenMP threads only add spin-wait overhead (badly so on a busy machine)."""
    with threadpool_limits(1):
        yield


def test_list_algorithms_shape_and_json() -> None:
    everything = list_algorithms()
    json.dumps(everything, allow_nan=False)
    assert [a["key"] for a in everything] == EXPECTED["classification"] + EXPECTED["regression"]
    for task, keys in EXPECTED.items():
        assert [a["key"] for a in list_algorithms(task)] == keys
    for algo in everything:
        assert set(algo) == {"key", "task_type", "name", "estimator", "params"}
        assert algo["params"], algo["key"]
        for p in algo["params"]:
            assert set(p) - {"choices"} == {"name", "type", "default", "nullable"}
            assert p["type"] in catalog.PARAM_TYPES
            assert ("choices" in p) == (p["type"] == "choice")
    with pytest.raises(SpecError) as exc:
        list_algorithms("clustering")
    assert exc.value.field == "task_type"


@pytest.mark.parametrize("key", list(CATALOG))
def test_defaults_come_from_sklearn_and_are_valid(key: str) -> None:
    entry = get_algorithm(key)
    sk_defaults = entry.estimator_class().get_params()
    described = {p["name"]: p for p in entry.describe()["params"]}
    for name, p in described.items():
        assert p["default"] == sk_defaults[name]
        # a nullable parameter must really accept None in scikit-learn
        if p["nullable"]:
            assert None in entry.constraints(name)
    assert clean_params(key, {}) == {name: sk_defaults[name] for name in described}


def test_expected_curated_params() -> None:
    names = {k: get_algorithm(k).param_names for k in CATALOG}
    assert names["logistic_regression"] == ["C", "max_iter"]
    assert names["random_forest_regressor"] == ["n_estimators", "max_depth", "min_samples_leaf"]
    assert names["hist_gradient_boosting_classifier"] == [
        "learning_rate",
        "max_iter",
        "max_leaf_nodes",
        "l2_regularization",
    ]
    assert names["knn_classifier"] == ["n_neighbors", "weights"]
    assert names["ridge"] == ["alpha"]
    assert names["linear_regression"] == ["fit_intercept"]
    weights = {p["name"]: p for p in get_algorithm("knn_classifier").describe()["params"]}["weights"]
    assert weights["choices"] == ["distance", "uniform"]


def test_unknown_algorithm() -> None:
    with pytest.raises(SpecError) as exc:
        get_algorithm("xgboost")
    assert exc.value.field == "algorithm"
    assert "'xgboost'" in exc.value.message and "random_forest_classifier" in exc.value.message
    with pytest.raises(SpecError):
        clean_params("xgboost", {})


def test_clean_params_coerces_form_strings() -> None:
    assert clean_params(
        "random_forest_classifier", {"n_estimators": "10", "max_depth": "none", "min_samples_leaf": ""}
    ) == {"n_estimators": 10, "max_depth": None, "min_samples_leaf": 1}
    assert (
        clean_params("random_forest_regressor", {"max_depth": " 4 ", "n_estimators": 20.0})["max_depth"] == 4
    )
    assert (
        clean_params("hist_gradient_boosting_regressor", {"max_leaf_nodes": "null"})["max_leaf_nodes"] is None
    )
    assert clean_params("logistic_regression", {"C": "0.5", "max_iter": "200"}) == {"C": 0.5, "max_iter": 200}
    assert clean_params("logistic_regression", {"C": 2})["C"] == 2.0
    assert clean_params("linear_regression", {"fit_intercept": "false"}) == {"fit_intercept": False}
    assert clean_params("linear_regression", {"fit_intercept": "on"}) == {"fit_intercept": True}
    assert clean_params("knn_classifier", {"weights": "distance", "n_neighbors": "3"}) == {
        "n_neighbors": 3,
        "weights": "distance",
    }
    json.dumps(clean_params("ridge", {"alpha": np.float64(0.3)}))


@pytest.mark.parametrize(
    ("key", "params", "field", "needle"),
    [
        ("random_forest_classifier", {"n_estimators": 0}, "params.n_estimators", "n_estimators"),
        ("random_forest_classifier", {"n_estimators": "0"}, "params.n_estimators", "range [1, inf)"),
        ("logistic_regression", {"C": -1}, "params.C", "'C'"),
        ("logistic_regression", {"C": "abc"}, "params.C", "'C'"),
        ("logistic_regression", {"C": "inf"}, "params.C", "finite"),
        ("random_forest_regressor", {"max_depth": "deep"}, "params.max_depth", "'deep'"),
        ("random_forest_regressor", {"max_depth": True}, "params.max_depth", "max_depth"),
        ("hist_gradient_boosting_classifier", {"learning_rate": 0}, "params.learning_rate", "learning_rate"),
        ("hist_gradient_boosting_classifier", {"min_samples_leaf": 5}, "params.min_samples_leaf", "Allowed"),
        (
            "hist_gradient_boosting_regressor",
            {"max_leaf_nodes": 1},
            "params.max_leaf_nodes",
            "max_leaf_nodes",
        ),
        ("knn_classifier", {"n_neighbors": None}, "params.n_neighbors", "cannot be empty"),
        ("knn_classifier", {"n_neighbors": "2.5"}, "params.n_neighbors", "n_neighbors"),
        ("knn_classifier", {"weights": "bogus"}, "params.weights", "'distance', 'uniform'"),
        ("ridge", {"alpha": -0.1}, "params.alpha", "alpha"),
        ("ridge", {"random_state": 1}, "params.random_state", "Unknown parameter"),
        ("linear_regression", {"fit_intercept": "maybe"}, "params.fit_intercept", "fit_intercept"),
    ],
)
def test_clean_params_rejects(key: str, params: dict, field: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        clean_params(key, params)
    assert exc.value.field == field
    assert needle in exc.value.message


def test_expand_grid() -> None:
    grid = expand_grid({"n_estimators": [10, "20"], "max_depth": [None, 3, "3"]}, "random_forest_classifier")
    assert grid == [
        {"n_estimators": 10, "max_depth": None, "min_samples_leaf": 1},
        {"n_estimators": 10, "max_depth": 3, "min_samples_leaf": 1},
        {"n_estimators": 20, "max_depth": None, "min_samples_leaf": 1},
        {"n_estimators": 20, "max_depth": 3, "min_samples_leaf": 1},
    ]
    assert expand_grid({"alpha": 0.5}, "ridge") == [{"alpha": 0.5}]
    assert expand_grid({}, "ridge") == [{"alpha": 1.0}]
    with pytest.raises(SpecError) as exc:
        expand_grid(
            {"C": list(range(1, 11)), "max_iter": [100, 200, 300, 400, 500, 600]}, "logistic_regression"
        )
    assert exc.value.field == "grid" and "60" in exc.value.message
    with pytest.raises(SpecError) as exc:
        expand_grid({"C": [1.0, -1.0]}, "logistic_regression")
    assert exc.value.field == "params.C"
    with pytest.raises(SpecError) as exc:
        expand_grid({"C": []}, "logistic_regression")
    assert exc.value.field == "params.C"


def _frame(n: int, n_numeric: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"n{i}": rng.normal(size=n) for i in range(n_numeric)})
    df["cat"] = rng.choice(["a", "b", "c"], n)
    df["flag"] = rng.random(n) < 0.5
    df["y_bin"] = np.where(df["n0"] + rng.normal(size=n) > 0, "p", "q")
    df["y_multi"] = rng.choice(["u", "v", "w", "x"], n)
    df["y_reg"] = df["n0"] * 3 + rng.normal(size=n)
    return df


@pytest.mark.parametrize(
    ("n", "n_numeric", "only"),
    [
        (80, 2, None),
        (80, 20, None),  # > 15 features: KNN switches to brute force
        (10_050, 2, "hist_gradient_boosting"),  # > 10,000 rows: HGB early stopping switches on
    ],
)
def test_trusted_types_cover_every_pipeline(n: int, n_numeric: int, only: str | None) -> None:
    """Everything a catalog pipeline may contain is trusted, in shapes other than the probe's."""
    df = _frame(n, n_numeric)
    trusted = set(trusted_types())
    numeric = [{"name": c, "role": "numeric"} for c in df.columns if c.startswith("n")]
    feature_sets = [
        numeric + [{"name": "cat", "role": "categorical"}, {"name": "flag", "role": "boolean"}],
        numeric,
        [{"name": "cat", "role": "categorical"}],
    ]
    if only:
        feature_sets = feature_sets[:1]
    for key, entry in CATALOG.items():
        if only and not key.startswith(only):
            continue
        targets = ["y_bin", "y_multi"] if entry.task_type == "classification" else ["y_reg"]
        params = {"n_estimators": 3} if "n_estimators" in entry.param_names else {}
        params |= {"max_iter": 5} if key.startswith("hist") else {}
        for target in targets:
            for features in feature_sets:
                spec = TrainingSpec(entry.task_type, target, features, key, params)
                y = df[target] if entry.task_type == "regression" else df[target].astype(object)
                pipeline = build_pipeline(spec).fit(df[spec.feature_names], y)
                untrusted = set(sio.get_untrusted_types(data=sio.dumps(pipeline)))
                assert untrusted <= trusted, (key, target, untrusted - trusted)


def test_trusted_types_are_narrow() -> None:
    names = trusted_types()
    assert names == sorted(names)
    assert "apps.ml.train._as_str_frame" in names
    assert not any(name.startswith(("builtins.", "posix.", "os.", "subprocess.")) for name in names)


# --- upper bounds on costly parameters ----------------------------------------------------------------


def test_a_value_above_its_limit_is_refused_naming_the_parameter() -> None:
    with pytest.raises(SpecError) as info:
        clean_params("random_forest_classifier", {"n_estimators": 10**9}, limits={"n_estimators": 1000})
    assert info.value.field == "params.n_estimators"
    assert "at most 1000" in info.value.message and "1e+09" in info.value.message


def test_a_value_at_its_limit_and_the_defaults_pass() -> None:
    limits = {"n_estimators": 100, "max_depth": 5}
    cleaned = clean_params("random_forest_classifier", {"n_estimators": "100"}, limits=limits)
    assert cleaned["n_estimators"] == 100 and cleaned["max_depth"] is None  # scikit-learn's default, not judged
    assert clean_params("random_forest_classifier", {"max_depth": "none"}, limits=limits)["max_depth"] is None
    with pytest.raises(SpecError, match="'max_depth' is at most 5"):
        clean_params("random_forest_classifier", {"max_depth": 6}, limits=limits)


def test_without_limits_only_scikit_learn_judges() -> None:
    assert clean_params("random_forest_classifier", {"n_estimators": 10**6})["n_estimators"] == 10**6


def test_every_grid_candidate_is_held_to_the_limits_and_the_grid_to_its_size() -> None:
    with pytest.raises(SpecError) as info:
        expand_grid({"max_iter": [100, 10**7]}, "logistic_regression", limits={"max_iter": 10_000})
    assert info.value.field == "params.max_iter"
    with pytest.raises(SpecError) as info:
        expand_grid({"C": [0.1, 1.0, 10.0]}, "logistic_regression", max_candidates=2)
    assert info.value.field == "grid" and "at most 2" in info.value.message
