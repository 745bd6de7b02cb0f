"""Training: spec validation, target checks, pipeline behaviour and agreement with plain scikit-learn."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification, make_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from apps.ml import train
from apps.ml.catalog import CATALOG, get_algorithm
from apps.ml.errors import SpecError
from apps.ml.persist import dump_pipeline
from apps.ml.prepare import canonical_labels, catalog_columns, label_text, prepare_features, prepare_for
from apps.ml.train import (
    TrainingCancelled,
    TrainingResult,
    TrainingSpec,
    build_pipeline,
    check_target,
    holdout_split,
    infer_task_type,
    prepare_inputs,
    run_training,
    select_best,
)

NUMERIC = ["f0", "f1", "f2", "f3"]
FEATURES = [{"name": n, "role": "numeric"} for n in NUMERIC] + [
    {"name": "color", "role": "categorical"},
    {"name": "flag", "role": "boolean"},
]
FAST_PARAMS = {"n_estimators": 10, "max_iter": 15}


def make_frame(task: str = "classification", n: int = 240, n_classes: int = 2, seed: int = 0) -> pd.DataFrame:
    """Numeric features from scikit-learn's generators plus a categorical and a boolean column."""
    rng = np.random.default_rng(seed)
    if task == "classification":
        X, y = make_classification(
            n_samples=n, n_features=4, n_informative=3, n_redundant=0, n_classes=n_classes, random_state=seed
        )
        target = np.array(["alpha", "beta", "gamma", "delta"])[y]
    else:
        X, target = make_regression(n_samples=n, n_features=4, noise=5.0, random_state=seed)
    df = pd.DataFrame(X, columns=NUMERIC)
    df.loc[rng.random(n) < 0.05, "f1"] = np.nan
    color = pd.Series(rng.choice(["red", "green", "blue"], n), dtype=object)
    color[rng.random(n) < 0.05] = np.nan
    df["color"] = color
    df["flag"] = rng.random(n) < 0.5
    df["y"] = target
    return df


def spec_for(algorithm: str, task: str = "classification", **kw) -> TrainingSpec:
    entry = CATALOG[algorithm]
    params = kw.pop("params", {k: v for k, v in FAST_PARAMS.items() if k in entry.param_names})
    return TrainingSpec(
        task_type=task,
        target="y",
        features=FEATURES,
        algorithm=algorithm,
        params=params,
        cv_folds=kw.pop("cv_folds", 3),
        split_seed=kw.pop("split_seed", 7),
        random_state=kw.pop("random_state", 11),
        **kw,
    )


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny fits: OpenMP threads only add spin-wait overhead (badly so on a busy machine)."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def clf_df() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def reg_df() -> pd.DataFrame:
    return make_frame("regression")


# --- spec -----------------------------------------------------------------------------------------------


def test_spec_round_trip_and_cleaned_params() -> None:
    spec = spec_for("random_forest_classifier", params={"n_estimators": "10", "max_depth": "none"})
    assert spec.params == {"n_estimators": 10, "max_depth": None, "min_samples_leaf": 1}
    data = spec.to_dict()
    json.dumps(data)
    assert TrainingSpec.from_dict(data) == spec


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cv_folds": 1}, "cv_folds"),
        ({"cv_folds": 11}, "cv_folds"),
        ({"holdout_fraction": 0.9}, "holdout_fraction"),
        ({"holdout_fraction": 0.01}, "holdout_fraction"),
        ({"algorithm": "ridge"}, "algorithm"),
        ({"algorithm": "xgboost"}, "algorithm"),
        ({"task_type": "ranking"}, "task_type"),
        ({"features": []}, "features"),
        ({"features": [{"name": "f0", "role": "text"}]}, "features"),
        ({"features": [{"name": "y", "role": "numeric"}]}, "features"),
        ({"params": {"n_estimators": 0}}, "params.n_estimators"),
        ({"split_seed": -1}, "split_seed"),
    ],
)
def test_spec_rejects_bad_values(changes: dict, field: str) -> None:
    data = spec_for("random_forest_classifier").to_dict() | changes
    with pytest.raises(SpecError) as exc:
        TrainingSpec.from_dict(data)
    assert exc.value.field == field


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(SpecError) as exc:
        TrainingSpec.from_dict(spec_for("ridge", "regression").to_dict() | {"foo": 1})
    assert exc.value.field == "foo"


# --- target -----------------------------------------------------------------------------------------------


def test_infer_task_type() -> None:
    assert infer_task_type(pd.Series(["a", "b"])) == "classification"
    assert infer_task_type(pd.Series([True, False])) == "classification"
    assert infer_task_type(pd.Series([0, 1, 2, 1])) == "classification"
    assert infer_task_type(pd.Series([0.0, 1.0, np.nan])) == "classification"
    assert infer_task_type(pd.Series(range(50))) == "regression"
    assert infer_task_type(pd.Series([0.5, 1.25, 3.0])) == "regression"


@pytest.mark.parametrize(
    ("frame", "task", "needle"),
    [
        (pd.DataFrame({"x": [1, 2]}), "classification", "'y' is not in the data"),
        (pd.DataFrame({"y": [np.nan, np.nan, None]}), "regression", "every row is missing"),
        (pd.DataFrame({"y": ["a", "a", "a", None]}), "classification", "constant"),
        (pd.DataFrame({"y": [3.0, 3.0, 3.0]}), "regression", "constant"),
        (pd.DataFrame({"y": ["1.5", "cheap", "2"]}), "regression", "contains text"),
        (pd.DataFrame({"y": ["a", "a", "b", "b", "lonely"]}), "classification", "'lonely'"),
        (pd.DataFrame({"y": [f"c{i}" for i in range(101)] * 2}), "classification", "101 classes"),
    ],
)
def test_check_target_errors(frame: pd.DataFrame, task: str, needle: str) -> None:
    with pytest.raises(SpecError) as exc:
        check_target(frame, "y", task)
    assert exc.value.field == "target"
    assert needle in exc.value.message


def test_run_training_refuses_all_missing_target(clf_df: pd.DataFrame) -> None:
    df = clf_df.assign(y=np.nan)
    with pytest.raises(SpecError, match="every row is missing") as exc:
        run_training(df, spec_for("logistic_regression"))
    assert exc.value.field == "target"


def test_run_training_refuses_missing_feature(clf_df: pd.DataFrame) -> None:
    with pytest.raises(SpecError) as exc:
        run_training(clf_df.drop(columns=["color"]), spec_for("logistic_regression"))
    assert exc.value.field == "features"


# --- split ----------------------------------------------------------------------------------------------


def test_holdout_split_deterministic_stratified_and_skips_missing_targets(clf_df: pd.DataFrame) -> None:
    df = clf_df.copy()
    df.loc[[0, 5, 9], "y"] = np.nan
    spec = spec_for("logistic_regression")
    train, hold = holdout_split(df, spec)
    train2, hold2 = holdout_split(df, spec)
    assert np.array_equal(train, train2) and np.array_equal(hold, hold2)
    assert not set(train) & set(hold)
    assert set(train) | set(hold) == set(range(len(df))) - {0, 5, 9}
    assert len(hold) == int(np.ceil(0.2 * (len(df) - 3)))
    full = df["y"].iloc[np.concatenate([train, hold])].value_counts(normalize=True)
    held = df["y"].iloc[hold].value_counts(normalize=True)
    assert (abs(full - held) < 0.05).all()
    other = holdout_split(df, spec_for("logistic_regression", split_seed=8))[1]
    assert not np.array_equal(hold, other)


# --- training -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", list(CATALOG))
def test_every_catalog_entry_trains(algorithm: str, clf_df: pd.DataFrame, reg_df: pd.DataFrame) -> None:
    task = CATALOG[algorithm].task_type
    df = clf_df if task == "classification" else reg_df
    result = run_training(df, spec_for(algorithm, task))
    payload = json.dumps(result.to_dict(), allow_nan=False)
    assert payload
    assert result.n_train + result.n_holdout == len(df)
    assert len(result.holdout_index) == result.n_holdout
    assert {f["feature"] for f in result.permutation_importance} == {f["name"] for f in FEATURES}
    means = [f["importance_mean"] for f in result.permutation_importance]
    assert means == sorted(means, reverse=True)
    assert set(result.library_versions) == {"python", "numpy", "pandas", "scipy", "sklearn", "skops"}
    signature = {s["name"]: s for s in result.signature}
    assert signature["color"]["categories"] == ["blue", "green", "red"]
    assert signature["flag"]["categories"] == ["False", "True"]
    if task == "classification":
        assert result.classes == ["alpha", "beta"]
        assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
        assert result.metrics["accuracy"] > 0.6
        assert result.charts["roc"]["kind"] == "binary"
        assert sum(map(sum, result.charts["confusion_matrix"]["matrix"])) == result.n_holdout
    else:
        assert set(result.metrics) == {"rmse", "mae", "r2"}
        assert result.metrics["r2"] > 0.3
        assert len(result.charts["residuals"]["y_true"]) == result.n_holdout
        assert sum(result.charts["residual_histogram"]["counts"]) == result.n_holdout
    assert all(len(v) == 3 for v in result.cv_scores.values())


def _independent_preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())]), NUMERIC),
            (
                "cat",
                Pipeline(
                    [
                        ("i", SimpleImputer(strategy="most_frequent")),
                        ("o", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                ["color", "flag"],
            ),
        ]
    )


def _independent_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["color"] = out["color"].astype(object)
    out["flag"] = out["flag"].map(str).astype(object)
    return out


def test_classification_metrics_match_plain_sklearn(clf_df: pd.DataFrame) -> None:
    spec = spec_for("logistic_regression", params={"C": 0.5, "max_iter": 200})
    result = run_training(clf_df, spec)
    train, hold = holdout_split(clf_df, spec)
    df = _independent_frame(clf_df)
    X, y = df[spec.feature_names], df["y"].to_numpy(dtype=object)
    model = Pipeline(
        [("p", _independent_preprocess()), ("m", LogisticRegression(C=0.5, max_iter=200, random_state=11))]
    )
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=7)
    expected_cv = cross_val_score(model, X.iloc[train], y[train], cv=cv, scoring="accuracy")
    assert result.cv_scores["accuracy"] == [float(s) for s in expected_cv]
    model.fit(X.iloc[train], y[train])
    pred = model.predict(X.iloc[hold])
    proba = model.predict_proba(X.iloc[hold])
    assert list(model.classes_) == result.classes
    y_hold = y[hold]
    assert result.metrics == {
        "accuracy": accuracy_score(y_hold, pred),
        "precision": precision_score(y_hold, pred, average="macro", zero_division=0),
        "recall": recall_score(y_hold, pred, average="macro", zero_division=0),
        "f1": f1_score(y_hold, pred, average="macro", zero_division=0),
        "roc_auc": roc_auc_score(y_hold == "beta", proba[:, 1]),
        "log_loss": log_loss(y_hold, proba, labels=["alpha", "beta"]),
    }
    assert result.holdout_index == list(hold)


def test_multiclass_metrics_match_plain_sklearn() -> None:
    df_raw = make_frame(n=300, n_classes=3, seed=3)
    spec = spec_for("logistic_regression", params={})
    result = run_training(df_raw, spec)
    train, hold = holdout_split(df_raw, spec)
    df = _independent_frame(df_raw)
    X, y = df[spec.feature_names], df["y"].to_numpy(dtype=object)
    model = Pipeline([("p", _independent_preprocess()), ("m", LogisticRegression(random_state=11))])
    model.fit(X.iloc[train], y[train])
    proba = model.predict_proba(X.iloc[hold])
    assert result.metrics["roc_auc"] == roc_auc_score(
        y[hold], proba, multi_class="ovr", average="macro", labels=list(model.classes_)
    )
    assert result.metrics["accuracy"] == accuracy_score(y[hold], model.predict(X.iloc[hold]))
    roc = result.charts["roc"]
    assert roc["kind"] == "ovr" and {c["label"] for c in roc["curves"]} == {"alpha", "beta", "gamma"}
    assert result.charts["confusion_matrix"]["labels"] == ["alpha", "beta", "gamma"]


def test_regression_metrics_match_plain_sklearn(reg_df: pd.DataFrame) -> None:
    spec = spec_for("ridge", "regression", params={"alpha": 2.0})
    result = run_training(reg_df, spec)
    train, hold = holdout_split(reg_df, spec)
    df = _independent_frame(reg_df)
    X, y = df[spec.feature_names], df["y"].to_numpy(dtype=float)
    model = Pipeline([("p", _independent_preprocess()), ("m", Ridge(alpha=2.0, random_state=11))])
    cv = KFold(n_splits=3, shuffle=True, random_state=7)
    expected_cv = cross_val_score(model, X.iloc[train], y[train], cv=cv, scoring="r2")
    assert result.cv_scores["r2"] == [float(s) for s in expected_cv]
    pred = model.fit(X.iloc[train], y[train]).predict(X.iloc[hold])
    assert result.metrics == {
        "rmse": root_mean_squared_error(y[hold], pred),
        "mae": mean_absolute_error(y[hold], pred),
        "r2": r2_score(y[hold], pred),
    }


def test_same_spec_and_data_give_identical_results(clf_df: pd.DataFrame) -> None:
    spec = spec_for("random_forest_classifier")
    a, b = run_training(clf_df, spec), run_training(clf_df, spec)
    assert a.metrics == b.metrics
    assert a.cv_scores == b.cv_scores
    assert a.charts == b.charts
    assert a.permutation_importance == b.permutation_importance
    assert a.holdout_index == b.holdout_index


def test_unseen_categories_and_messy_input_at_predict_time(clf_df: pd.DataFrame) -> None:
    result = run_training(clf_df, spec_for("hist_gradient_boosting_classifier"))
    new = clf_df[[f["name"] for f in FEATURES]].head(4).copy()
    new["color"] = ["purple", None, "red", "teal"]
    new["flag"] = ["yes", True, None, 0]
    new["f0"] = ["1.5", "oops", None, np.inf]
    new["extra"] = 1  # columns the model does not use are ignored
    pred = result.pipeline.predict(prepare_for(result.pipeline, new))
    assert len(pred) == 4 and set(pred) <= {"alpha", "beta"}
    assert result.pipeline.predict_proba(prepare_for(result.pipeline, new[::-1])).shape == (4, 2)


def test_mixed_type_categorical_and_int_read_as_float() -> None:
    df = make_frame(n=200, seed=1)
    df["color"] = pd.Series([[1, "a", 2.0, None, "1"][i % 5] for i in range(len(df))], dtype=object)
    result = run_training(df, spec_for("logistic_regression"))
    assert {s["name"]: s for s in result.signature}["color"]["categories"] == ["1", "2", "a"]
    ints = df[[f["name"] for f in FEATURES]].head(3).assign(color=pd.Series([1, 2, 1], dtype="int64"))
    floats = ints.assign(color=[1.0, 2.0, 1.0])
    pipeline = result.pipeline
    assert np.array_equal(
        pipeline.predict_proba(prepare_for(pipeline, ints)), pipeline.predict_proba(prepare_for(pipeline, floats))
    )


def test_integer_target_labels_are_strings() -> None:
    df = make_frame(n=200, seed=2)
    df["y"] = (df["y"] == "beta").astype(float)
    df.loc[3, "y"] = np.nan
    result = run_training(df, spec_for("knn_classifier"))
    assert result.classes == ["0", "1"]
    assert result.n_train + result.n_holdout == len(df) - 1


def test_progress_reported_per_fold(clf_df: pd.DataFrame) -> None:
    calls: list[tuple[int, str]] = []
    run_training(
        clf_df, spec_for("logistic_regression", cv_folds=4), progress=lambda p, m: calls.append((p, m))
    )
    fold_calls = [c for c in calls if c[1].startswith("Fold ")]
    assert [m for _, m in fold_calls] == [f"Fold {i}/4 done" for i in range(1, 5)]
    assert [p for p, _ in fold_calls] == [28, 45, 62, 80]
    percents = [p for p, _ in calls]
    assert percents == sorted(percents) and percents[-1] == 100


def test_cancellation_raises_between_steps(clf_df: pd.DataFrame) -> None:
    checks: list[int] = []

    def should_cancel() -> bool:
        checks.append(1)
        return len(checks) >= 2

    progress: list[int] = []
    with pytest.raises(TrainingCancelled):
        run_training(
            clf_df,
            spec_for("logistic_regression"),
            progress=lambda p, m: progress.append(p),
            should_cancel=should_cancel,
        )
    assert len(checks) == 2 and max(progress) < 82


def test_build_pipeline_sets_params_and_random_state() -> None:
    pipeline = build_pipeline(
        spec_for("random_forest_classifier", params={"n_estimators": 7, "max_depth": 3})
    )
    model = pipeline.named_steps["model"]
    assert (model.n_estimators, model.max_depth, model.random_state) == (7, 3, 11)
    assert "random_state" not in build_pipeline(spec_for("knn_classifier")).named_steps["model"].get_params()


def test_select_best() -> None:
    assert select_best([{"rmse": 3.0}, {"rmse": 1.0}, {"rmse": 1.0}], "rmse") == 1
    assert select_best([{"accuracy": None}, {"accuracy": 0.5}, {"accuracy": 0.9}], "accuracy") == 2
    fake = TrainingResult(
        pipeline=None,
        metrics={"r2": 0.99},
        cv_scores={},
        cv_mean={"r2": 0.1},  # type: ignore[arg-type]
        holdout_index=[],
        n_train=0,
        n_holdout=0,
        charts={},
        permutation_importance=[],
        classes=[],
        signature=[],
        library_versions={},
        timings={},
    )
    assert select_best([fake, {"r2": 0.2}], "r2") == 1
    with pytest.raises(SpecError):
        select_best([{"r2": 1.0}], "bogus")


# --- scikit-learn components only; the casts before the pipeline ----------------------------------------------


def _previous_release_pipeline(spec: TrainingSpec) -> Pipeline:
    """What build_pipeline made before pipelines were scikit-learn only: casts inside, by our functions."""
    numeric = Pipeline([
        ("to_float", FunctionTransformer(train._as_float_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ])  # fmt: skip
    categorical = Pipeline([
        ("to_str", FunctionTransformer(train._as_str_frame, feature_names_out="one-to-one")),
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])  # fmt: skip
    branches = [("numeric", numeric, spec.names_with_role("numeric")),
                ("categorical", categorical, spec.names_with_role("categorical", "boolean"))]
    estimator = get_algorithm(spec.algorithm).make_estimator(spec.params, spec.random_state)
    return Pipeline([("preprocess", ColumnTransformer(branches, sparse_threshold=0.0)), ("model", estimator)])


def _messy_rows(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[[f["name"] for f in FEATURES]].head(8).astype(object)
    rows.loc[rows.index[0], ["f0", "color", "flag"]] = [None, None, None]
    rows.loc[rows.index[1], ["f1", "color", "flag"]] = ["2.5", "purple", "True"]
    rows.loc[rows.index[2], ["f2", "flag"]] = [np.inf, 1]
    rows.loc[rows.index[3], ["f3", "flag"]] = ["oops", False]
    return rows


@pytest.mark.parametrize("algorithm", list(CATALOG))
def test_prepared_pipelines_predict_exactly_as_the_previous_release_did(algorithm: str) -> None:
    task = CATALOG[algorithm].task_type
    df = make_frame(task, n=200, n_classes=3, seed=5)
    spec = spec_for(algorithm, task)
    y = train._target_array(df, spec)
    before = _previous_release_pipeline(spec).fit(df[spec.feature_names], y)
    now = build_pipeline(spec).fit(prepare_inputs(df, spec), y)
    for rows in (df[spec.feature_names], _messy_rows(df)):
        assert np.array_equal(before.predict(rows), now.predict(prepare_for(now, rows)))
        if task == "classification":
            assert np.array_equal(before.predict_proba(rows), now.predict_proba(prepare_for(now, rows)))


def test_new_pipelines_name_no_type_of_ours(clf_df: pd.DataFrame) -> None:
    for algorithm in CATALOG:
        task = CATALOG[algorithm].task_type
        df = clf_df if task == "classification" else make_frame("regression")
        spec = spec_for(algorithm, task)
        pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), train._target_array(df, spec))
        untrusted = sio.get_untrusted_types(data=dump_pipeline(pipeline))
        assert not [t for t in untrusted if t.startswith("apps.")], (algorithm, untrusted)


_NOTEBOOK = """
import json, sys
import numpy as np, pandas as pd, skops.io as sio
spec = json.load(open(sys.argv[2]))
data = open(sys.argv[1], "rb").read()
pipeline = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
frame = pd.DataFrame(spec["rows"])
for name in spec["numeric"]:
    frame[name] = frame[name].astype(float)
for name in spec["categorical"]:
    frame[name] = frame[name].astype(object).where(frame[name].notna(), np.nan)
print(json.dumps({"predictions": pipeline.predict(frame).tolist(),
                  "probabilities": pipeline.predict_proba(frame).tolist()}))
"""


def test_an_artifact_loads_and_predicts_with_scikit_learn_and_skops_alone(clf_df, tmp_path) -> None:
    """A notebook without our code: floats for numeric columns, canonical strings for the others."""
    spec = spec_for("random_forest_classifier")
    pipeline = build_pipeline(spec).fit(prepare_inputs(clf_df, spec), train._target_array(clf_df, spec))
    prepared = prepare_for(pipeline, _messy_rows(clf_df))
    numeric, categorical = catalog_columns(pipeline)
    rows = prepared.astype(object).where(prepared.notna(), None).to_dict("records")
    (tmp_path / "model.skops").write_bytes(dump_pipeline(pipeline))
    (tmp_path / "rows.json").write_text(json.dumps({"rows": rows, "numeric": numeric, "categorical": categorical}))
    done = subprocess.run(  # -I: no current directory on the path, so `apps` is not importable
        [sys.executable, "-I", "-c", _NOTEBOOK, str(tmp_path / "model.skops"), str(tmp_path / "rows.json")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["predictions"] == pipeline.predict(prepared).tolist()
    assert answer["probabilities"] == pipeline.predict_proba(prepared).tolist()


def test_preparing_casts_numbers_to_floats_and_categories_to_canonical_text() -> None:
    frame = pd.DataFrame({
        "n": pd.Series([1, "2.5", "x", None, np.inf, -np.inf, True], dtype=object),
        "c": pd.Series([3, 3.0, "3", None, True, 2.5, np.nan], dtype=object),
        "other": list("abcdefg"),
    })  # fmt: skip
    out = prepare_features(frame, numeric=["n"], categorical=["c"])
    assert out["n"].dtype == np.float64 and out["c"].dtype == object
    np.testing.assert_array_equal(out["n"].to_numpy(), [1.0, 2.5, np.nan, np.nan, np.nan, np.nan, 1.0])
    assert out["c"].tolist()[:6] == ["3", "3", "3", np.nan, "True", "2.5"] and out["c"].isna().tolist()[-1]
    assert out["other"].tolist() == list("abcdefg") and list(out.columns) == ["n", "c", "other"]
    assert [label_text(v) for v in (False, 4.0, -0.0, 1e20, "x")] == ["False", "4", "0", "100000000000000000000", "x"]
    again = prepare_features(out, numeric=["n"], categorical=["c"])
    pd.testing.assert_frame_equal(again, out)  # idempotent: safe before the previous release's pipelines
    assert canonical_labels(pd.Series([1, 2, 1])).tolist() == ["1", "2", "1"]


def test_frames_for_pipelines_that_are_not_ours_are_left_alone() -> None:
    frame = pd.DataFrame({"a": ["1", "2"], "b": [1, 2]})
    foreign = Pipeline([("scale", StandardScaler()), ("model", Ridge())])
    assert prepare_for(foreign, frame) is frame
    renamed = Pipeline([("preprocess", ColumnTransformer([("num", StandardScaler(), ["b"])])), ("m", Ridge())])
    assert catalog_columns(renamed) is None and prepare_for(renamed, frame) is frame
