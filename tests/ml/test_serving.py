"""Serving: request validation and the compiled predictor's exact agreement with the fitted pipeline."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.feature_selection import VarianceThreshold
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from apps.ml import serving
from apps.ml.catalog import CATALOG
from apps.ml.errors import MLError
from apps.ml.persist import dump_pipeline, load_pipeline, sha256_bytes
from apps.ml.prepare import prepare_for
from apps.ml.serving import CompiledPredictor, InputError, trees, validate_instances
from apps.ml.serving.encode import NeedsPipeline
from apps.ml.train import (
    TrainingSpec,
    _signature,
    _target_array,
    build_pipeline,
    prepare_inputs,
    run_training,
)

FEATURES = [
    {"name": "f0", "role": "numeric"},
    {"name": "f1", "role": "numeric"},
    {"name": "f2", "role": "numeric"},
    {"name": "f3", "role": "numeric"},
    {"name": "color", "role": "categorical"},
    {"name": "size", "role": "categorical"},
    {"name": "flag", "role": "boolean"},
]
NAMES = [f["name"] for f in FEATURES]
FAST_PARAMS = {"n_estimators": 30, "max_iter": 20}  # enough trees for the numpy walk to pay off
EXPECTED_KERNEL = {
    "logistic_regression": "logistic",
    "random_forest_classifier": "forest",
    "random_forest_regressor": "forest",
    "hist_gradient_boosting_classifier": "hist_gradient_boosting",
    "hist_gradient_boosting_regressor": "hist_gradient_boosting",
    "knn_classifier": "knn",
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny fits: OpenMP threads only add spin-wait overhead (badly so on a busy machine)."""
    with threadpool_limits(1):
        yield


def make_frame(task: str, n_classes: int = 2, n: int = 260, seed: int = 0) -> pd.DataFrame:
    """Numeric features (some missing) + a text, an integer-coded and a boolean feature."""
    rng = np.random.default_rng(seed)
    if task == "classification":
        X, y = make_classification(
            n_samples=n, n_features=4, n_informative=3, n_redundant=0, n_classes=n_classes, random_state=seed
        )
        target = np.array(["alpha", "beta", "gamma"])[y]
    else:
        X, target = make_regression(n_samples=n, n_features=4, noise=5.0, random_state=seed)
    df = pd.DataFrame(X, columns=["f0", "f1", "f2", "f3"])
    df.loc[rng.random(n) < 0.1, "f1"] = np.nan
    color = pd.Series(rng.choice(["red", "green", "blue", "grey"], n), dtype=object)
    color[rng.random(n) < 0.1] = None
    df["color"] = color
    df["size"] = rng.choice([1, 2, 3], n)  # integer categories: "1", "2", "3"
    df["flag"] = rng.random(n) < 0.5
    df["y"] = target
    return df


def spec_for(algorithm: str, **params) -> TrainingSpec:
    entry = CATALOG[algorithm]
    merged = {k: v for k, v in FAST_PARAMS.items() if k in entry.param_names} | params
    return TrainingSpec(entry.task_type, "y", FEATURES, algorithm, merged, cv_folds=2, random_state=3)


def fit(df: pd.DataFrame, spec: TrainingSpec) -> tuple[Pipeline, list[dict]]:
    pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
    signature = _signature(df, df[spec.feature_names], spec)
    for item in signature:
        item["nullable"] = True
    return pipeline, signature


def as_instances(df: pd.DataFrame) -> list[dict]:
    """Rows as parsed JSON would give them: Python scalars, null for missing."""
    out = []
    for record in df[NAMES].to_dict("records"):
        row = {}
        for key, value in record.items():
            value = value.item() if hasattr(value, "item") else value
            row[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
        out.append(row)
    return out


def tricky_instances(base: list[dict]) -> list[dict]:
    """Nulls everywhere, unseen categories and categories spelled as other JSON types."""
    rows = [dict(r) for r in base[:12]]
    rows[0].update(f0=None, f1=None, f2=None, f3=None, color=None, size=None, flag=None)
    rows[1].update(color="purple", size=7, flag="maybe")
    rows[2].update(size="2", flag="True")  # same categories as 2 / True
    rows[3].update(size=2.0, f0=3, f2=-1)  # float spelling of "2"; ints for numeric features
    rows[4].update(f0=1e6, f3=-1e-9, color="")
    rows[5].update(f1=float("nan"), f2=float("inf"))  # both imputed like null
    rows[6].update(size=True, flag=1)  # "True" is not a size; 1 is not a flag: unseen
    return rows


def compiled(predictor: CompiledPredictor, instances: list[dict]) -> bool:
    """Would this request be answered by the compiled path (not handed to the pipeline)?"""
    try:
        predictor._transform_fast(instances)
    except NeedsPipeline:
        return False
    return True


def prepared(pipeline: Pipeline, instances: list[dict]) -> pd.DataFrame:
    """The instances as our generic paths hand them to the pipeline."""
    return prepare_for(pipeline, pd.DataFrame(instances))


def reference(pipeline: Pipeline, instances: list[dict]) -> tuple[np.ndarray, np.ndarray | None]:
    frame = prepared(pipeline, instances)
    proba = pipeline.predict_proba(frame) if hasattr(pipeline[-1], "predict_proba") else None
    return pipeline.predict(frame), proba


def assert_matches(predictor: CompiledPredictor, pipeline: Pipeline, instances: list[dict]) -> None:
    predictions, probabilities = predictor.predict(instances)
    expected, expected_proba = reference(pipeline, instances)
    if expected_proba is None:
        assert probabilities is None
        assert all(isinstance(v, float) for v in predictions)
        np.testing.assert_allclose(predictions, expected, rtol=0, atol=1e-9)
        return
    assert predictions == expected.tolist()
    assert all(isinstance(v, str) for v in predictions)
    classes = [str(c) for c in pipeline.classes_]
    assert all(list(p) == classes for p in probabilities)
    got = np.array([[p[c] for c in classes] for p in probabilities])
    np.testing.assert_allclose(got, expected_proba, rtol=0, atol=1e-12)


CASES = [(key, 2) for key, e in CATALOG.items() if e.task_type == "classification"]
CASES += [(key, 3) for key, e in CATALOG.items() if e.task_type == "classification"]
CASES += [(key, 0) for key, e in CATALOG.items() if e.task_type == "regression"]


@pytest.fixture(scope="module")
def frames() -> dict[int, pd.DataFrame]:
    return {
        2: make_frame("classification", 2, seed=1),
        3: make_frame("classification", 3, seed=2),
        0: make_frame("regression", seed=3),
    }


@pytest.mark.parametrize(("algorithm", "n_classes"), CASES, ids=[f"{a}-{n}" for a, n in CASES])
def test_compiled_predictor_reproduces_pipeline(frames, algorithm: str, n_classes: int) -> None:
    df = frames[n_classes]
    pipeline, signature = fit(df, spec_for(algorithm))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert predictor.fast is True and predictor.path == "compiled", predictor.fallback_reason
    assert predictor.kernel == EXPECTED_KERNEL.get(algorithm, "estimator")
    tricky = tricky_instances(as_instances(df))
    instances = as_instances(df.iloc[:150]) + tricky[:6]
    predictor.validate(instances + tricky, max_instances=1000)
    assert compiled(predictor, instances)
    assert_matches(predictor, pipeline, instances)  # batch, compiled path
    assert not compiled(predictor, instances + tricky[6:])  # size=True next to size=1: see below
    assert_matches(predictor, pipeline, instances + tricky[6:])
    for row in instances[:10] + tricky:
        assert compiled(predictor, [row])
        assert_matches(predictor, pipeline, [row])  # single rows, incl. every tricky one
    np.testing.assert_array_equal(
        predictor.transform_rows(instances), pipeline[:-1].transform(prepared(pipeline, instances))
    )
    if predictor.kernel in ("forest", "hist_gradient_boosting"):  # the tree-by-tree path for big batches
        assert predictor._kernel.vector_max_rows >= 1
        predictor._kernel.vector_max_rows = 0
        assert_matches(predictor, pipeline, instances)
        assert_matches(predictor, pipeline, instances[:1])


def test_large_ensembles_are_walked_tree_by_tree(frames, monkeypatch) -> None:
    monkeypatch.setattr(trees, "MAX_TABLE_NODES", 10)
    df = frames[2]
    for algorithm in ("random_forest_classifier", "hist_gradient_boosting_classifier"):
        pipeline, signature = fit(df, spec_for(algorithm))
        predictor = CompiledPredictor.from_pipeline(pipeline, signature)
        assert predictor.fast and predictor.kernel == EXPECTED_KERNEL[algorithm]
        assert predictor._kernel.table is None and predictor._kernel.vector_max_rows == 0
        rows = tricky_instances(as_instances(df))
        assert_matches(predictor, pipeline, rows[:6])
        assert_matches(predictor, pipeline, rows[:1])


@pytest.mark.parametrize("roles", [("numeric",), ("categorical", "boolean")])
def test_only_one_kind_of_feature(frames, roles: tuple[str, ...]) -> None:
    df = frames[3]
    features = [f for f in FEATURES if f["role"] in roles]
    for algorithm in ("logistic_regression", "hist_gradient_boosting_classifier"):
        spec = TrainingSpec(
            "classification", "y", features, algorithm, {"max_iter": 20} if "hist" in algorithm else {}
        )
        pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
        signature = [dict(item, nullable=True) for item in _signature(df, df, spec)]
        predictor = CompiledPredictor.from_pipeline(pipeline, signature)
        assert predictor.fast, predictor.fallback_reason
        rows = [
            {k: v for k, v in r.items() if k in spec.feature_names}
            for r in tricky_instances(as_instances(df))
        ]
        rows += [{k: v for k, v in r.items() if k in spec.feature_names} for r in as_instances(df.iloc[:30])]
        assert_matches(predictor, pipeline, rows)
        assert_matches(predictor, pipeline, rows[:1])


def test_knn_with_distance_weights_and_run_training_pipeline(frames) -> None:
    df = frames[3]
    result = run_training(df, spec_for("knn_classifier", weights="distance", n_neighbors=7))
    predictor = CompiledPredictor.from_pipeline(result.pipeline, result.signature)
    assert predictor.fast and predictor.classes == tuple(result.classes)
    rows = [{k: v for k, v in r.items()} for r in as_instances(df.iloc[:80])]
    rows = [r for r in rows if None not in r.values()]  # this signature has no nullable flag
    predictor.validate(rows, max_instances=100)
    assert_matches(predictor, result.pipeline, rows)


def test_knn_brute_force_single_call_path() -> None:
    """Wide data: scikit-learn picks brute force, where predict is argmax(predict_proba)."""
    rng = np.random.default_rng(5)
    X, y = make_classification(n_samples=200, n_features=18, n_informative=6, n_classes=3, random_state=5)
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(18)])
    df["kind"] = rng.choice(["a", "b", "c"], len(df))
    df["y"] = np.array(["p", "q", "r"])[y]
    features = [{"name": c, "role": "numeric"} for c in df.columns[:18]] + [
        {"name": "kind", "role": "categorical"}
    ]
    spec = TrainingSpec("classification", "y", features, "knn_classifier", {"n_neighbors": 6})
    pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
    predictor = CompiledPredictor.from_pipeline(pipeline, _signature(df, df, spec))
    assert predictor.fast and predictor.kernel == "knn" and pipeline[-1]._fit_method == "brute"
    rows = df[spec.feature_names].iloc[:40].to_dict("records")
    assert_matches(predictor, pipeline, rows)
    assert_matches(predictor, pipeline, rows[:1])


def test_mixed_numeric_spellings_in_one_batch_match_pandas_inference(frames) -> None:
    """A batch mixing 2 and 2.0 (pandas makes a float column) or ints and text (object column)."""
    df = frames[2]
    pipeline, signature = fit(df, spec_for("random_forest_classifier"))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    base = as_instances(df.iloc[:6])
    for sizes, fast in (
        ([1, 2.0, 3, None, 2, 1.5], True),
        ([3, 3, 3, 3, 3, 3], True),
        ([2, "2", 3.0, False, None, 2], True),
        # pd.factorize merges True with 1 (and False with 0): the first spelling names both
        ([1, "2", 3.0, True, None, 2], False),
        ([True, "2", 3.0, 1.0, None, 2], False),
    ):
        rows = [dict(r, size=s) for r, s in zip(base, sizes, strict=True)]
        assert compiled(predictor, rows) is fast
        assert_matches(predictor, pipeline, rows)
    for f0 in ([2**53 + 1, 0.5, 2**64 + 5, None, -(2**63) - 1, 7], [2**53 + 1, 2, 3, 4, 5, 6]):
        rows = [dict(r, f0=v) for r, v in zip(base, f0, strict=True)]
        assert compiled(predictor, rows)
        assert_matches(predictor, pipeline, rows)
        assert_matches(predictor, pipeline, rows[:1])


def test_huge_integer_category_goes_through_pipeline_exactly(frames) -> None:
    df = frames[2].copy()
    df.loc[:9, "size"] = 2**53 + 1
    pipeline, signature = fit(df, spec_for("logistic_regression"))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert predictor.fast
    rows = as_instances(df.iloc[:6])
    rows[0]["size"], rows[1]["size"] = 2**53 + 1, None  # pandas stores this column as float
    assert not compiled(predictor, rows)
    assert_matches(predictor, pipeline, rows)
    assert_matches(predictor, pipeline, rows[:1])


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_column_without_training_values_is_dropped_like_the_imputer_does(frames) -> None:
    df = frames[2].copy()
    df["f3"] = np.nan
    pipeline, signature = fit(df, spec_for("logistic_regression"))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert predictor.fast and predictor.n_columns == pipeline[-1].n_features_in_
    rows = as_instances(df.iloc[:20])
    rows[0]["f3"] = 5.0
    assert compiled(predictor, rows)
    assert_matches(predictor, pipeline, rows)


def test_artifact_round_trip_still_compiles(frames) -> None:
    df = frames[3]
    pipeline, signature = fit(df, spec_for("hist_gradient_boosting_classifier"))
    data = dump_pipeline(pipeline)
    loaded = load_pipeline(data, expected_sha256=sha256_bytes(data))
    predictor = CompiledPredictor.from_pipeline(loaded, signature)
    assert predictor.fast
    assert_matches(predictor, pipeline, tricky_instances(as_instances(df)))


@pytest.mark.parametrize("algorithm", ["random_forest_classifier", "knn_classifier"])
def test_concurrent_predictions_are_consistent(frames, algorithm: str) -> None:
    df = frames[3]
    pipeline, signature = fit(df, spec_for(algorithm))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    instances = as_instances(df.iloc[:40])
    expected = predictor.predict(instances)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda k: predictor.predict(instances[k % 7 :] or instances), range(40)))
    for k, (predictions, probabilities) in enumerate(results):
        start = k % 7
        assert predictions == expected[0][start:]
        assert probabilities == expected[1][start:]


# --- fallback --------------------------------------------------------------------------------------------


def test_unknown_pipeline_structure_uses_generic_path(frames) -> None:
    df = frames[3]
    spec = spec_for("logistic_regression")
    base = build_pipeline(spec)
    pipeline = Pipeline([base.steps[0], ("select", VarianceThreshold()), base.steps[1]])
    pipeline.fit(prepare_inputs(df, spec), _target_array(df, spec))
    _, signature = fit(df, spec)
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert predictor.fast is False and predictor.path == "pipeline" and predictor.kernel == "pipeline"
    assert "two-step" in predictor.fallback_reason
    instances = tricky_instances(as_instances(df))
    assert_matches(predictor, pipeline, instances)
    assert_matches(predictor, pipeline, instances[:1])
    np.testing.assert_array_equal(
        predictor.transform_rows(instances), pipeline[:-1].transform(prepared(pipeline, instances))
    )


def test_changed_preprocessing_step_uses_generic_path(frames) -> None:
    df = frames[0]
    spec = spec_for("ridge")
    pipeline = build_pipeline(spec)
    pipeline.set_params(preprocess__numeric__impute__strategy="mean")
    pipeline.fit(prepare_inputs(df, spec), _target_array(df, spec))
    _, signature = fit(df, spec)
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert not predictor.fast and "branch" in predictor.fallback_reason
    assert_matches(predictor, pipeline, tricky_instances(as_instances(df)))


def test_verification_failure_falls_back(frames, monkeypatch) -> None:
    df = frames[2]
    pipeline, signature = fit(df, spec_for("logistic_regression"))
    original = CompiledPredictor._transform_fast

    def off_by_a_bit(self, instances):
        return original(self, instances) * (1 + 1e-15)

    monkeypatch.setattr(CompiledPredictor, "_transform_fast", off_by_a_bit)
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    assert not predictor.fast and "exactly" in predictor.fallback_reason
    monkeypatch.undo()
    assert_matches(predictor, pipeline, as_instances(df.iloc[:10]))


def test_unverified_compile_and_generic_constructor(frames) -> None:
    df = frames[0]
    pipeline, signature = fit(df, spec_for("hist_gradient_boosting_regressor"))
    quick = CompiledPredictor.from_pipeline(pipeline, signature, verify=False)
    generic = CompiledPredictor(pipeline, signature)
    assert quick.fast and not generic.fast
    rows = tricky_instances(as_instances(df))
    assert quick.predict(rows) == generic.predict(rows)
    assert quick.predict([]) == ([], None) and quick.transform_rows([]).shape == (0, quick.n_columns)


# --- validation ------------------------------------------------------------------------------------------

SIGNATURE = [
    {"name": "age", "role": "numeric", "dtype": "float64"},
    {"name": "income", "role": "numeric", "dtype": "float64", "nullable": True},
    {"name": "city", "role": "categorical", "dtype": "str", "categories": ["Oslo", "Rome"]},
    {"name": "member", "role": "boolean", "dtype": "bool", "categories": ["False", "True"]},
]
GOOD = {"age": 41, "income": 52000.5, "city": "Oslo", "member": True}


def errors_of(instances, max_instances: int = 10) -> list[dict]:
    with pytest.raises(InputError) as info:
        validate_instances(instances, SIGNATURE, max_instances=max_instances)
    assert isinstance(info.value, MLError) and info.value.code == "bad_input"
    assert info.value.message == str(info.value)
    return info.value.errors


def test_valid_instances_pass() -> None:
    rows = [
        GOOD,
        {"age": 0.5, "income": None, "city": "Lisbon", "member": False},  # nullable + unseen category
        {"age": -3, "income": float("nan"), "city": 12, "member": "True"},  # NaN counts as null
        {"age": 2**60, "income": 1, "city": 1.5, "member": 0},
    ]
    assert validate_instances(rows, SIGNATURE, max_instances=4) is None


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"age": 1}, "must be a list"),
        ("[]", "must be a list"),
        ([], "empty"),
        ([GOOD] * 11, "Too many instances: 11; at most 10"),
    ],
)
def test_request_level_errors(body, fragment: str) -> None:
    (error,) = errors_of(body)
    assert error["instance"] is None and error["field"] is None
    assert fragment in error["message"]


def test_every_problem_is_reported_with_instance_and_field() -> None:
    rows = [
        GOOD,
        {"income": 1.0, "city": "Rome", "member": False, "agee": 3},  # missing age + unknown agee
        "not an object",
        {"age": "3.5", "income": True, "city": ["Oslo"], "member": {"a": 1}},  # four wrong types
        {"age": None, "income": None, "city": None, "member": float("nan")},  # nulls where refused
        {"age": float("inf"), "income": 2**2000, "city": float("-inf"), "member": None},
        [1, 2],
    ]
    errors = errors_of(rows)
    got = [(e["instance"], e["field"]) for e in errors]
    assert got == [
        (1, "agee"),
        (1, "age"),
        (2, None),
        (3, "age"),
        (3, "income"),
        (3, "city"),
        (3, "member"),
        (4, "age"),
        (4, "city"),
        (4, "member"),
        (5, "age"),
        (5, "income"),
        (5, "city"),
        (5, "member"),
        (6, None),
    ]
    by_key = {(e["instance"], e["field"]): e["message"] for e in errors}
    assert (
        "Unknown feature 'agee'" in by_key[(1, "agee")] and "age, income, city, member" in by_key[(1, "agee")]
    )
    assert by_key[(1, "age")] == "Missing feature 'age'."
    assert "must be an object" in by_key[(2, None)] and "a string" in by_key[(2, None)]
    assert "JSON number" in by_key[(3, "age")] and "'3.5'" in by_key[(3, "age")]
    assert "boolean" in by_key[(3, "income")]
    assert "an array" in by_key[(3, "city")]
    assert "an object" in by_key[(3, "member")]
    assert "must not be null" in by_key[(4, "age")]
    assert "must not be null" in by_key[(4, "city")] and "must not be null" in by_key[(4, "member")]
    assert "missing value" in by_key[(5, "age")]
    assert "out of range" in by_key[(5, "income")]
    assert "not a valid category" in by_key[(5, "city")]
    assert "an array" in by_key[(6, None)]


def test_input_error_summary_and_single_field() -> None:
    (error,) = errors_of([dict(GOOD, age="x")])
    assert error == {"instance": 0, "field": "age", "message": error["message"]}
    with pytest.raises(InputError) as info:
        validate_instances([dict(GOOD, age="x", city=None)], SIGNATURE, max_instances=5)
    assert info.value.field is None and "(and 1 more problem)" in info.value.message


def test_predictor_validate_uses_its_signature(frames) -> None:
    df = frames[0]
    pipeline, signature = fit(df, spec_for("ridge"))
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    good = as_instances(df.iloc[:2])
    predictor.validate(good, max_instances=2)
    with pytest.raises(InputError) as info:
        predictor.validate([dict(good[0], f0="1")], max_instances=2)
    assert info.value.errors[0]["field"] == "f0"


def test_bad_signature_is_refused() -> None:
    with pytest.raises(MLError):
        validate_instances([GOOD], [{"name": "age", "role": "date"}], max_instances=1)
    with pytest.raises(MLError):
        validate_instances([GOOD], [], max_instances=1)


# --- artifacts written by the previous release -----------------------------------------------------------

LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_catalog_logistic"


def test_an_artifact_written_by_the_previous_release_loads_and_predicts_as_recorded() -> None:
    """The committed artifact's pipeline names ``apps.ml.train._as_float_frame`` / ``_as_str_frame``."""
    record = json.loads(LEGACY.with_suffix(".json").read_text())
    data = LEGACY.with_suffix(".skops").read_bytes()
    assert sha256_bytes(data) == record["sha256"]
    pipeline = load_pipeline(data, expected_sha256=record["sha256"])
    compiled_predictor = CompiledPredictor.from_pipeline(pipeline, record["signature"])
    generic_predictor = CompiledPredictor(pipeline, record["signature"])
    assert compiled_predictor.fast, compiled_predictor.fallback_reason
    compiled_predictor.validate(record["rows"], max_instances=10)
    for predictor in (compiled_predictor, generic_predictor):
        predictions, probabilities = predictor.predict(record["rows"])
        assert predictions == record["predictions"]
        assert [[p[c] for c in record["classes"]] for p in probabilities] == record["probabilities"]


def test_an_instance_with_more_keys_than_the_signature_is_refused_without_listing_them() -> None:
    hostile = dict(GOOD, **{f"k{i:06d}": 0 for i in range(50_000)})
    with pytest.raises(InputError) as info:
        validate_instances([GOOD, hostile], SIGNATURE, max_instances=5)
    assert info.value.total == 1 and len(info.value.errors) == 1
    (error,) = info.value.errors
    assert (error["instance"], error["field"]) == (1, None)
    assert "50,004 keys" in error["message"] and "4 features" in error["message"]
    assert "'k000000', 'k000001', 'k000002'" in error["message"]
    few = dict(GOOD, **{f"k{i}": 0 for i in range(serving.MAX_EXTRA_KEYS)})
    assert len(errors_of([few])) == serving.MAX_EXTRA_KEYS  # a few unknown keys are each named


def test_problems_beyond_the_first_hundred_are_counted_not_collected() -> None:
    bad = {"age": "x", "income": "y", "city": [], "member": {}}  # four problems per instance
    with pytest.raises(InputError) as info:
        validate_instances([bad] * 60, SIGNATURE, max_instances=100)
    assert len(info.value.errors) == serving.MAX_COLLECTED_ERRORS == 100
    assert info.value.total == 240 and "(and 239 more problems)" in info.value.message
    assert info.value.errors[-1]["instance"] == 24  # the first 100, in order
