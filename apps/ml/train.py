"""Training: target checks, pipeline construction and the training run (the spec is ``apps.ml.spec``).

A run is: drop rows with a missing target, split off a holdout set fixed by
``split_seed`` (so every run of an experiment is judged on the same rows),
cross-validate on the rest fold by fold (reporting progress and honouring
cancellation between folds), refit on the whole training part, then evaluate
on the holdout. Everything except the fitted pipeline is JSON-serialisable.

Pipelines are built from scikit-learn's own components only, so an artifact loads
with scikit-learn and skops alone; the casts they need (numbers to floats, categories
to canonical strings) are applied to the frame beforehand (``apps.ml.prepare``, whose
docstring says what a notebook user must feed a bare pipeline).
"""

from __future__ import annotations

import copy
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import scipy
import sklearn
import skops
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from apps.ml import metrics as M
from apps.ml.catalog import get_algorithm
from apps.ml.errors import SpecError
from apps.ml.prepare import (
    CATEGORICAL_BRANCH,
    NUMERIC_BRANCH,
    canonical_labels,
    numeric_values,
    prepare_features,
)
from apps.ml.spec import FEATURE_ROLES, TrainingSpec  # noqa: F401  (FEATURE_ROLES: importable from here too)

MAX_CLASSES = 100
MAX_CATEGORIES_IN_SIGNATURE = 200
CLASSIFICATION_MAX_INT_LEVELS = 20

ProgressFn = Callable[[int, str], None]
CancelFn = Callable[[], bool]


class TrainingCancelled(Exception):
    """Raised between steps when ``should_cancel()`` says the job was cancelled."""


# --- target -----------------------------------------------------------------------------------------------


def infer_task_type(series: pd.Series) -> str:
    """Guess the task from the target column.

    Classification for text, booleans and integer-valued columns with at most
    20 distinct values (floats that are all whole numbers count as integers,
    since an int column with missing values is read as float); else regression.
    """
    s = series.dropna()
    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return "classification"
    values = s.to_numpy(dtype=float)
    integral = pd.api.types.is_integer_dtype(series) or bool(
        np.all(np.mod(values[np.isfinite(values)], 1) == 0)
    )
    if integral and s.nunique() <= CLASSIFICATION_MAX_INT_LEVELS:
        return "classification"
    return "regression"


def _regression_target(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def check_target(df: pd.DataFrame, target: str, task_type: str) -> None:
    """Refuse targets that cannot produce a meaningful model, with a message a user can act on."""
    if target not in df.columns:
        raise SpecError(f"Target column {target!r} is not in the data.", field="target")
    series = df[target].dropna()
    if series.empty:
        raise SpecError(f"Target column {target!r} has no values: every row is missing it.", field="target")
    if task_type == "regression":
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            numeric = pd.to_numeric(series, errors="coerce")
            bad = series[numeric.isna()]
            if pd.api.types.is_bool_dtype(series) or not bad.empty:
                example = bad.iloc[0] if not bad.empty else series.iloc[0]
                raise SpecError(
                    f"Target column {target!r} contains text (e.g. {example!r}); "
                    "regression needs a numeric target — use classification instead.",
                    field="target",
                )
            series = numeric
        if not np.isfinite(series.to_numpy(dtype=float)).all():
            raise SpecError(f"Target column {target!r} contains infinite values.", field="target")
        if series.nunique() < 2:
            raise SpecError(
                f"Target column {target!r} is constant ({series.iloc[0]!r}); nothing to learn.",
                field="target",
            )
        return
    labels = pd.Series(canonical_labels(series))
    counts = labels.value_counts()
    if len(counts) < 2:
        raise SpecError(
            f"Target column {target!r} is constant ({labels.iloc[0]!r}); nothing to learn.", field="target"
        )
    if len(counts) > MAX_CLASSES:
        raise SpecError(
            f"Target column {target!r} has {len(counts)} classes; at most {MAX_CLASSES} are "
            "supported (is it an identifier, or a numeric target for regression?).",
            field="target",
        )
    rare = sorted(counts[counts < 2].index)
    if rare:
        shown = ", ".join(repr(c) for c in rare[:10]) + (" …" if len(rare) > 10 else "")
        raise SpecError(
            f"Target column {target!r}: class(es) {shown} have fewer than 2 rows; remove or merge them.",
            field="target",
        )


# --- pipeline -------------------------------------------------------------------------------------------


# The previous release built pipelines whose FunctionTransformers call these two functions,
# and skops stored them by qualified name in every artifact it wrote. They are a file
# format: keep them importable as ``apps.ml.train._as_float_frame`` / ``_as_str_frame``
# (and on the catalog's trusted types, LEGACY_ARTIFACT_TYPES) forever, unchanged in what
# they return, or artifacts already in storage stop loading or predict differently.
LEGACY_ARTIFACT_TYPES = ("apps.ml.train._as_float_frame", "apps.ml.train._as_str_frame")


def _as_float_frame(X: Any) -> np.ndarray:
    """Numeric columns → float array; text that is not a number and ±inf become NaN (then imputed)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    # Fortran order = the layout DataFrame.to_numpy() gives, so results match plain sklearn bit for bit.
    out = np.empty((len(frame), frame.shape[1]), dtype=float, order="F")
    for j, name in enumerate(frame.columns):
        out[:, j] = numeric_values(frame[name])
    return out


def _as_str_frame(X: Any) -> np.ndarray:
    """Categorical/boolean columns → object array of canonical strings (NaN kept for imputation)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    out = np.empty((len(frame), frame.shape[1]), dtype=object)
    for j, name in enumerate(frame.columns):
        out[:, j] = canonical_labels(frame[name])
    return out


def build_pipeline(spec: TrainingSpec) -> Pipeline:
    """Unfitted preprocessing + estimator pipeline for ``spec``, of scikit-learn components only.

    Input: ``prepare_inputs(frame, spec)`` (floats for numeric features, canonical strings
    for categorical and boolean ones).
    """
    numeric_steps = Pipeline([
        ("impute", SimpleImputer(strategy="median")),
        ("scale", StandardScaler()),
    ])  # fmt: skip
    categorical_steps = Pipeline([
        ("impute", SimpleImputer(strategy="most_frequent")),
        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ])  # fmt: skip
    numeric = spec.names_with_role("numeric")
    categorical = spec.names_with_role("categorical", "boolean")
    transformers = [(NUMERIC_BRANCH, numeric_steps, numeric)] if numeric else []
    if categorical:
        transformers.append((CATEGORICAL_BRANCH, categorical_steps, categorical))
    preprocess = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    estimator = get_algorithm(spec.algorithm).make_estimator(spec.params, spec.random_state)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def prepare_inputs(df: pd.DataFrame, spec: TrainingSpec) -> pd.DataFrame:
    """The feature columns of ``df`` as ``build_pipeline``'s pipelines take them."""
    return prepare_features(
        df[spec.feature_names],
        numeric=spec.names_with_role("numeric"),
        categorical=spec.names_with_role("categorical", "boolean"),
    )


# --- split ----------------------------------------------------------------------------------------------


def _target_array(df: pd.DataFrame, spec: TrainingSpec) -> np.ndarray:
    series = df[spec.target]
    return canonical_labels(series) if spec.task_type == "classification" else _regression_target(series)


def holdout_split(df: pd.DataFrame, spec: TrainingSpec) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positional indices (into ``df``) of the training and holdout rows.

    Rows with a missing target are in neither. Deterministic for a given
    ``split_seed`` and data; stratified for classification whenever every
    class can be represented on both sides.
    """
    if spec.target not in df.columns:
        raise SpecError(f"Target column {spec.target!r} is not in the data.", field="target")
    kept = np.flatnonzero(df[spec.target].notna().to_numpy())
    if kept.size < 2:
        raise SpecError(f"Target column {spec.target!r} has fewer than 2 non-missing rows.", field="target")
    y = _target_array(df, spec)[kept]
    stratify = y if spec.task_type == "classification" and _can_stratify(y, spec.holdout_fraction) else None
    train_pos, hold_pos = train_test_split(
        np.arange(kept.size), test_size=spec.holdout_fraction, random_state=spec.split_seed, stratify=stratify
    )
    return np.sort(kept[train_pos]), np.sort(kept[hold_pos])


def _can_stratify(y: np.ndarray, fraction: float) -> bool:
    _, counts = np.unique(y, return_counts=True)
    n_test = int(np.ceil(fraction * len(y)))
    return counts.min() >= 2 and n_test >= len(counts) and len(y) - n_test >= len(counts)


# --- run ------------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """Outcome of ``run_training``; all fields but ``pipeline`` are JSON-serialisable (see ``to_dict``)."""

    pipeline: Pipeline
    metrics: dict[str, float | None]
    cv_scores: dict[str, list[float | None]]
    cv_mean: dict[str, float | None]
    holdout_index: list[int]
    n_train: int
    n_holdout: int
    charts: dict[str, Any]
    permutation_importance: list[dict[str, Any]]
    classes: list[str]
    signature: list[dict[str, Any]]
    library_versions: dict[str, str]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Everything except the fitted pipeline (``asdict`` would deep-copy the pipeline too)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name != "pipeline"}


def library_versions() -> dict[str, str]:
    """Versions that determine whether an artifact loads and reproduces."""
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
    }


def _evaluate(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: TrainingSpec, classes: list[str]
) -> tuple[dict[str, float | None], np.ndarray, np.ndarray | None]:
    pred = pipeline.predict(X)
    if spec.task_type == "classification":
        proba = M.aligned_proba(pipeline, X, classes)
        return M.classification_metrics(y, pred, proba, classes), pred, proba
    return M.regression_metrics(y, pred), pred, None


def _check(should_cancel: CancelFn | None) -> None:
    if should_cancel is not None and should_cancel():
        raise TrainingCancelled("Training was cancelled.")


def _report(progress: ProgressFn | None, percent: int, message: str) -> None:
    if progress is not None:
        progress(int(percent), message)


def _cv_splitter(spec: TrainingSpec, y: np.ndarray) -> KFold | StratifiedKFold:
    if spec.task_type == "classification":
        _, counts = np.unique(y, return_counts=True)
        if counts.max() >= spec.cv_folds:
            return StratifiedKFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split_seed)
    return KFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split_seed)


def _split_checked(df: pd.DataFrame, spec: TrainingSpec) -> tuple[np.ndarray, np.ndarray]:
    """The training and holdout rows, once the data can train ``spec`` at all."""
    missing = [name for name in spec.feature_names if name not in df.columns]
    if missing:
        raise SpecError(
            f"Feature column(s) not in the data: {', '.join(map(repr, missing))}.", field="features"
        )
    check_target(df, spec.target, spec.task_type)
    train_idx, hold_idx = holdout_split(df, spec)
    if len(hold_idx) < 1:
        raise SpecError(
            "The holdout set is empty; use more rows or a larger holdout_fraction.", field="holdout_fraction"
        )
    if len(train_idx) < spec.cv_folds:
        raise SpecError(
            f"Only {len(train_idx)} training rows for {spec.cv_folds}-fold cross-validation.",
            field="cv_folds",
        )
    return train_idx, hold_idx


def _cross_validate(
    template: Pipeline, X: pd.DataFrame, y: np.ndarray, spec: TrainingSpec, classes: list[str],
    progress: ProgressFn | None, should_cancel: CancelFn | None,
) -> dict[str, list[float | None]]:
    cv_scores: dict[str, list[float | None]] = {}
    folds = list(_cv_splitter(spec, y).split(np.zeros(len(y)), y))
    _report(progress, 10, f"Cross-validating ({len(folds)} folds)")
    for i, (fit_pos, val_pos) in enumerate(folds):
        _check(should_cancel)
        fold_model = clone(template).fit(X.iloc[fit_pos], y[fit_pos])
        scores, _, _ = _evaluate(fold_model, X.iloc[val_pos], y[val_pos], spec, classes)
        for name, value in scores.items():
            cv_scores.setdefault(name, []).append(value)
        _report(progress, 10 + round(70 * (i + 1) / len(folds)), f"Fold {i + 1}/{len(folds)} done")
    return cv_scores


def _holdout_charts(spec: TrainingSpec, y: np.ndarray, pred: np.ndarray, proba, classes: list[str]) -> dict:
    if spec.task_type == "classification":
        return {"confusion_matrix": M.confusion_matrix_chart(y, pred, classes), "roc": M.roc_chart(y, proba, classes)}
    return M.residual_charts(y, pred, seed=spec.random_state)


def run_training(
    df: pd.DataFrame,
    spec: TrainingSpec,
    *,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> TrainingResult:
    """Cross-validate, fit and evaluate ``spec`` on ``df`` (see the module docstring)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    _report(progress, 0, "Checking data")
    train_idx, hold_idx = _split_checked(df, spec)
    X = prepare_inputs(df, spec)
    y_all = _target_array(df, spec)
    X_train, y_train = X.iloc[train_idx], y_all[train_idx]
    X_hold, y_hold = X.iloc[hold_idx], y_all[hold_idx]
    classes = sorted(set(y_train) | set(y_hold)) if spec.task_type == "classification" else []
    template = build_pipeline(spec)

    t0 = time.perf_counter()
    cv_scores = _cross_validate(template, X_train, y_train, spec, classes, progress, should_cancel)
    timings["cross_validation"] = time.perf_counter() - t0

    _check(should_cancel)
    _report(progress, 82, "Fitting on the full training set")
    t0 = time.perf_counter()
    pipeline = clone(template).fit(X_train, y_train)
    timings["fit"] = time.perf_counter() - t0

    _check(should_cancel)
    _report(progress, 88, "Evaluating on the holdout set")
    t0 = time.perf_counter()
    holdout_metrics, pred, proba = _evaluate(pipeline, X_hold, y_hold, spec, classes)
    charts = _holdout_charts(spec, y_hold, pred, proba, classes)
    timings["evaluate"] = time.perf_counter() - t0

    _check(should_cancel)
    _report(progress, 92, "Computing permutation importance")
    t0 = time.perf_counter()
    importances = M.permutation_importances(
        pipeline, X_hold, y_hold, task_type=spec.task_type, random_state=spec.random_state
    )
    timings["importance"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    _report(progress, 100, "Done")
    return TrainingResult(
        pipeline=pipeline,
        metrics=holdout_metrics,
        cv_scores=cv_scores,
        cv_mean={name: _mean(values) for name, values in cv_scores.items()},
        holdout_index=[int(i) for i in hold_idx],
        n_train=len(train_idx),
        n_holdout=len(hold_idx),
        charts=charts,
        permutation_importance=importances,
        classes=[str(c) for c in getattr(pipeline, "classes_", [])],
        signature=_signature(df, X_train, spec),
        library_versions=library_versions(),
        timings=timings,
    )


def _mean(values: list[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return M.clean_float(np.mean(real)) if real else None


def _signature(df: pd.DataFrame, X_train: pd.DataFrame, spec: TrainingSpec) -> list[dict[str, Any]]:
    """What a prediction request must look like: columns, roles, dtypes, known categories."""
    out = []
    for feature in spec.features:
        name = feature["name"]
        item: dict[str, Any] = {"name": name, "role": feature["role"], "dtype": str(df[name].dtype)}
        if feature["role"] in ("categorical", "boolean"):
            seen = pd.unique(pd.Series(canonical_labels(X_train[name])).dropna())
            categories = sorted(str(c) for c in seen)
            item["categories"] = categories[:MAX_CATEGORIES_IN_SIGNATURE]
            item["n_categories"] = len(categories)
        out.append(item)
    return out


def select_best(results: Sequence[TrainingResult | Mapping[str, float | None]], primary_metric: str) -> int:
    """Index of the best candidate by ``primary_metric`` (ties → the earliest).

    A ``TrainingResult`` is judged on its cross-validation mean, not its
    holdout metrics: choosing on the holdout would make the holdout estimate
    optimistic. A plain mapping is taken as the metric dict to compare.
    """
    if not results:
        raise SpecError("No candidates to choose from.", field="primary_metric")
    if primary_metric not in M.METRICS:
        raise SpecError(f"Unknown metric {primary_metric!r}.", field="primary_metric")
    best = 0
    for i, result in enumerate(results):
        scores = result.cv_mean if isinstance(result, TrainingResult) else result
        best_scores = results[best].cv_mean if isinstance(results[best], TrainingResult) else results[best]
        if M.is_better(primary_metric, scores.get(primary_metric), best_scores.get(primary_metric)):
            best = i
    return best
