"""Online prediction: request validation and a compiled, pandas-free predictor.

Two pieces, used together by the prediction API::

    predictor = CompiledPredictor.from_pipeline(pipeline, run.signature)   # once per loaded model
    predictor.validate(instances, max_instances=1000)                      # raises InputError
    predictions, probabilities = predictor.predict(instances)

**Request contract** (``validate_instances``): ``instances`` is the parsed JSON
body part, a non-empty list (at most ``max_instances``) of objects mapping
*every* feature of the signature — no more, no fewer — to a value:

* numeric features take a JSON number (int or float). Strings are refused,
  even numeric-looking ones such as ``"3.5"`` (a client that quotes numbers is
  almost always mis-serialising something, and silently parsing would make
  ``"1,5"`` vs ``"1.5"`` a locale bug); booleans, arrays and objects are
  refused. ``NaN``/``±Infinity`` (not standard JSON, but Python's parser
  accepts them) count as null: the pipeline imputes them like a missing value.
* categorical and boolean features take a string, a number or a boolean; the
  value is compared with the training categories as text, exactly as the
  training pipeline does (``1``, ``1.0`` and ``"1"`` are the same category,
  ``true`` is ``"True"``). A category never seen in training is *accepted*:
  the one-hot encoder ignores it (all its indicator columns are 0). Arrays,
  objects and ``±Infinity`` are refused.
* null policy: the pipeline would impute a null, but a null silently replaced
  by the training median / most frequent value is usually a client bug, so a
  null (or NaN) is accepted only for a feature whose signature entry says
  ``"nullable": true`` — meant for features that had missing values in
  training. Signatures without that key refuse nulls, with a message saying so.
* a feature must be present even when nullable (send an explicit ``null``).

Every problem is collected (not just the first) into ``InputError.errors``,
each ``{"instance": index or None, "field": name or None, "message": ...}``.

**CompiledPredictor** reproduces ``pipeline.predict(pd.DataFrame(instances))``
and ``predict_proba`` bit for bit without pandas: it reads the fitted pieces of
the pipeline that ``apps.ml.train.build_pipeline`` makes (imputer statistics,
scaler mean/scale, one-hot categories, the ColumnTransformer's column order),
builds the model's float matrix directly with numpy, and hands it to the final
estimator through a "kernel" that does the estimator's own arithmetic with less
per-call overhead:

* ``forest`` (random forests): scikit-learn sums the trees through joblib
  (~40 µs per tree even with one job). Small requests walk all trees at once
  with numpy (``_TreeTable``), larger ones call each tree's Cython ``predict``
  directly; either way leaf values are added in scikit-learn's order.
* ``hist_gradient_boosting``: scikit-learn opens an OpenMP parallel region per
  tree (milliseconds per row on a busy machine). Small requests use the numpy
  walk, larger ones ``_raw_predict(X, n_threads=1)``; the loss object then
  turns raw scores into probabilities exactly as ``predict_proba`` does.
* ``logistic``: one ``decision_function`` call gives both labels and
  probabilities (scikit-learn's predict and predict_proba each compute it).
* ``knn``: one ``predict_proba`` call when scikit-learn's own ``predict`` is
  argmax(predict_proba) (uniform weights, brute force); otherwise both calls.
  The neighbour search's OpenMP is limited to one thread for the call (in the
  calling thread only): on a loaded machine its threads spin-wait.
* ``estimator``: the estimator's own ``predict`` (+ ``predict_proba``).

Wrapping the calls in ``sklearn.config_context(assume_finite=True,
skip_parameter_validation=True)`` made no difference beyond noise (< 10 %,
the finiteness check on a 1×55 matrix is ~2 µs), so it is not done.

Construction checks the compiled path against the pipeline itself on probe
rows (every category, nulls, an unseen category, extreme numbers) and demands
exact equality; a pipeline of another structure, or any disagreement, selects
the generic path (DataFrame + ``pipeline.predict``): still correct, just
slower. ``predictor.fast`` and ``predictor.path`` say which one is used, and
``fallback_reason`` why. A request the compiled path cannot reproduce exactly
is answered by the generic path: integers beyond 2**53 in a categorical
feature (pandas may store them as floats), a batch whose categorical column
mixes booleans with the numbers 0/1 (``pd.factorize`` in the training code
treats ``True`` and ``1`` as one value and names both after whichever came
first), or values outside the contract above when ``validate`` was skipped.

A predictor is immutable after construction and allocates per call, so one
instance may be shared by any number of threads.
"""

from __future__ import annotations

import contextlib
import math
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.extmath import softmax

from apps.ml.errors import MLError
from apps.ml.prepare import prepare_for
from apps.ml.train import _as_float_frame, _as_str_frame

NUMERIC_ROLES = frozenset({"numeric"})
CATEGORICAL_ROLES = frozenset({"categorical", "boolean"})
_MAX_EXACT_INT = 2**53  # beyond this pandas may turn an int into a (different) float label
_MAX_NAMES_IN_MESSAGE = 20
_NUMERIC_TYPES = frozenset({int, float, type(None)})
_MAX_TABLE_NODES = 500_000  # ≤ ~25 MB of node arrays; bigger ensembles are walked tree by tree
_ROW_LOOP_MAX = 16  # up to this many instances, categorical values are encoded row by row


class InputError(MLError):
    """A prediction request does not match the model's signature.

    ``errors`` lists every problem as ``{"instance": int | None, "field": str |
    None, "message": str}`` (``instance`` is None for problems with the request
    as a whole, ``field`` None for problems with a whole instance).
    """

    code = "bad_input"

    def __init__(self, errors: list[dict[str, Any]]):
        self.errors = list(errors)
        first = self.errors[0]["message"] if self.errors else "Invalid instances."
        more = len(self.errors) - 1
        message = first if more <= 0 else f"{first} (and {more} more problem{'s' if more > 1 else ''})"
        field = self.errors[0]["field"] if len(self.errors) == 1 else None
        super().__init__(message, field=field)


# --- validation -------------------------------------------------------------------------------------------


class _FeatureSpec:
    """Signature entry reduced to what validation needs."""

    __slots__ = ("name", "numeric", "nullable")

    def __init__(self, name: str, numeric: bool, nullable: bool):
        self.name = name
        self.numeric = numeric
        self.nullable = nullable


class _CompiledSignature:
    """A signature list prepared once: feature specs, the name set and the message listing names."""

    __slots__ = ("features", "names", "name_set", "expected", "checks")

    def __init__(self, signature: Sequence[Mapping[str, Any]]):
        if not isinstance(signature, Sequence) or isinstance(signature, str | bytes) or not signature:
            raise MLError("The model has no usable signature (a list of features).", field="signature")
        features = []
        for item in signature:
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                raise MLError("Each signature entry must have a 'name'.", field="signature")
            role = item.get("role")
            if role not in NUMERIC_ROLES and role not in CATEGORICAL_ROLES:
                raise MLError(
                    f"Signature feature {item['name']!r} has unknown role {role!r}.", field="signature"
                )
            features.append(_FeatureSpec(item["name"], role in NUMERIC_ROLES, item.get("nullable") is True))
        self.features = tuple(features)
        self.names = tuple(f.name for f in features)
        if len(set(self.names)) != len(self.names):
            raise MLError("The signature lists a feature twice.", field="signature")
        self.name_set = frozenset(self.names)
        self.checks = tuple((f.name, f.numeric) for f in features)
        shown = ", ".join(self.names[:_MAX_NAMES_IN_MESSAGE])
        if len(self.names) > _MAX_NAMES_IN_MESSAGE:
            shown += f", … ({len(self.names)} in all)"
        self.expected = shown


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return f"a {type(value).__name__}"


def _value_problem(spec: _FeatureSpec, value: Any) -> str | None:
    """Message for a bad value of one feature, or None when it is acceptable."""
    kind = type(value)
    if spec.numeric:
        if kind is float:
            if value - value == 0.0 or spec.nullable:  # finite, or NaN/inf where null is allowed
                return None
            return (
                f"'{spec.name}' is {value!r}, which counts as a missing value, and this feature "
                "does not allow missing values."
            )
        if kind is int:
            if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
                return None
            try:
                float(value)
            except OverflowError:
                return f"'{spec.name}' is out of range for a floating-point number."
            return None
        if value is None:
            return None if spec.nullable else _null_message(spec.name)
        if isinstance(value, bool):
            return f"'{spec.name}' must be a number, got a boolean ({str(value).lower()})."
        if isinstance(value, str):
            return (
                f"'{spec.name}' must be a JSON number, got the string {value[:40]!r} (send numbers unquoted)."
            )
        if isinstance(value, int | float):  # int/float subclasses other than bool
            return _value_problem(spec, float(value))
        return f"'{spec.name}' must be a number, got {_json_type(value)}."
    if kind is str:
        return None if "\x00" not in value else f"'{spec.name}' contains a NUL character (\\u0000), which is not allowed."
    if kind is bool or kind is int:
        return None
    if kind is float:
        if value - value == 0.0:
            return None
        if value != value:  # NaN: treated as missing, like the pipeline does
            return None if spec.nullable else _null_message(spec.name)
        return f"'{spec.name}' must be a string, number or boolean; {value!r} is not a valid category."
    if value is None:
        return None if spec.nullable else _null_message(spec.name)
    if isinstance(value, str | bool | int):
        return None
    return f"'{spec.name}' must be a string, number or boolean, got {_json_type(value)}."


def _null_message(name: str) -> str:
    return f"'{name}' must not be null: the model's signature does not allow missing values for this feature."


def _validate(instances: Any, sig: _CompiledSignature, max_instances: int) -> None:
    if not isinstance(instances, list):
        raise InputError([{
            "instance": None,
            "field": None,
            "message": f"'instances' must be a list of objects, got {_json_type(instances)}.",
        }])  # fmt: skip
    if not instances:
        raise InputError([
            {"instance": None, "field": None, "message": "'instances' is empty: send at least one instance."}
        ])  # fmt: skip
    if len(instances) > max_instances:
        raise InputError([{
            "instance": None,
            "field": None,
            "message": f"Too many instances: {len(instances)}; at most {max_instances} per request.",
        }])  # fmt: skip
    errors: list[dict[str, Any]] = []
    features, name_set = sig.features, sig.name_set
    checks = sig.checks
    for i, inst in enumerate(instances):
        if type(inst) is dict and inst.keys() == name_set:  # fast path: the common valid instance
            for name, numeric in checks:
                value = inst[name]
                kind = type(value)
                if numeric:
                    if (kind is float and value - value == 0.0) or (
                        kind is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT
                    ):
                        continue
                elif kind is str and "\x00" not in value:
                    continue
                break
            else:
                continue
        if not isinstance(inst, dict):
            errors.append({
                "instance": i,
                "field": None,
                "message": f"Instance {i} must be an object mapping feature names to values, "
                f"got {_json_type(inst)}.",
            })  # fmt: skip
            continue
        if inst.keys() != name_set:
            for key in inst:
                if key not in name_set:
                    errors.append({
                        "instance": i,
                        "field": str(key),
                        "message": f"Unknown feature {str(key)!r}; the model expects: {sig.expected}.",
                    })  # fmt: skip
        for spec in features:
            try:
                value = inst[spec.name]
            except KeyError:
                errors.append(
                    {"instance": i, "field": spec.name, "message": f"Missing feature '{spec.name}'."}
                )
                continue
            problem = _value_problem(spec, value)
            if problem is not None:
                errors.append({"instance": i, "field": spec.name, "message": problem})
    if errors:
        raise InputError(errors)


def validate_instances(instances: Any, signature: Sequence[Mapping[str, Any]], *, max_instances: int) -> None:
    """Check a prediction request against a run's signature; raise ``InputError`` listing every problem.

    See the module docstring for the contract (types, nulls, unseen categories).
    ``CompiledPredictor.validate`` does the same with the signature prepared once.
    """
    _validate(instances, _CompiledSignature(signature), max_instances)


# --- compiled predictor -----------------------------------------------------------------------------------


class _NeedsPipeline(Exception):
    """This request holds something the compiled path cannot reproduce exactly; use the pipeline."""


def _tuple_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple]:
    if len(names) == 1:
        name = names[0]
        return lambda d: (d[name],)
    return operator.itemgetter(*names)


def _is_nan_value(x: Any) -> bool:
    return isinstance(x, float) and x != x


def _same(a: Any, b: Any) -> bool:
    """Exact equality of two prediction results (labels, floats, probability arrays)."""
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


class CompiledPredictor:
    """Fast, thread-safe predictions for a fitted ``build_pipeline`` pipeline (see the module docstring).

    Attributes: ``fast`` (compiled numpy path in use), ``path`` ("compiled" or
    "pipeline"), ``kernel`` (how the final estimator is called: "forest",
    "hist_gradient_boosting", "logistic", "knn", "estimator" or "pipeline"), ``fallback_reason``,
    ``feature_names``, ``task_type`` ("classification"/"regression"),
    ``classes`` (class labels as strings, or None) and ``n_columns`` (width of
    the model's input matrix; None on the pipeline path).
    """

    fast: bool
    path: str
    kernel: str
    fallback_reason: str | None

    def __init__(self, pipeline: Pipeline, signature: Sequence[Mapping[str, Any]]):
        """Generic (pipeline) predictor; use ``from_pipeline`` to get the compiled one when possible."""
        self.pipeline = pipeline
        self._sig = _CompiledSignature(signature)
        self.feature_names = self._sig.names
        estimator = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
        self.estimator = estimator
        classes = getattr(estimator, "classes_", None)
        self.task_type = "classification" if classes is not None else "regression"
        self.classes: tuple[str, ...] | None = (
            tuple(str(c) for c in np.asarray(classes).tolist()) if classes is not None else None
        )
        self._has_proba = classes is not None and hasattr(estimator, "predict_proba")
        self.fast = False
        self.path = "pipeline"
        self.kernel = "pipeline"
        self.fallback_reason = "not compiled"
        self.n_columns: int | None = None

    # construction -----------------------------------------------------------------------------------------

    @classmethod
    def from_pipeline(
        cls, pipeline: Pipeline, signature: Sequence[Mapping[str, Any]], *, verify: bool = True
    ) -> CompiledPredictor:
        """Compile ``pipeline`` (fitted by ``run_training``); fall back to the generic path if unsure.

        With ``verify`` (default) the compiled path must reproduce the pipeline
        exactly on probe rows, or the generic path is used. Costs a few
        milliseconds once (plus one pipeline prediction of ~10 rows).
        """
        self = cls(pipeline, signature)
        try:
            self._compile()
        except _Unsupported as exc:
            self.fallback_reason = str(exc)
            return self
        self.fast, self.path, self.fallback_reason = True, "compiled", None
        if not verify:
            return self
        try:
            probe = self._probe_instances()
            expected = self._predict_pipeline(probe)
            expected_one = self._predict_pipeline(probe[:1])
        except Exception as exc:  # the pipeline itself cannot score probes: nothing to compare with
            self._use_pipeline(f"verification could not run the pipeline: {exc!r}")
            return self
        try:
            X, X_one = self._transform_fast(probe), self._transform_fast(probe[:1])
            reference = self.pipeline[:-1].transform(self._frame(probe))
            same_matrix = _same(X, reference) and _same(
                self._transform_fast(probe, by_column=True), reference
            )
        except Exception as exc:
            self._use_pipeline(f"the compiled transform failed on probe rows: {exc!r}")
            return self
        if not same_matrix:
            self._use_pipeline("the compiled transform did not reproduce the preprocessing exactly")
            return self
        for kernel in dict.fromkeys((self.kernel, "estimator")):
            self.kernel = kernel
            modes = (
                (True, False) if kernel in ("forest", "hist_gradient_boosting") and self._table else (None,)
            )
            try:
                results = [
                    (self._call_estimator(X, mode) + self._call_estimator(X_one, mode)) for mode in modes
                ]
            except Exception:
                continue
            if all(_same(g, e) for got in results for g, e in zip(got, expected + expected_one, strict=True)):
                return self
        self._use_pipeline("the compiled path did not reproduce the pipeline's output exactly on probe rows")
        return self

    def _use_pipeline(self, reason: str) -> None:
        self.fast, self.path, self.kernel, self.fallback_reason = False, "pipeline", "pipeline", reason
        self.n_columns = None

    def _compile(self) -> None:
        pipe = self.pipeline
        if not isinstance(pipe, Pipeline) or len(pipe.steps) != 2:
            raise _Unsupported("not a two-step (preprocess, model) Pipeline")
        preprocess, estimator = pipe.steps[0][1], pipe.steps[1][1]
        if type(preprocess) is not ColumnTransformer or not hasattr(preprocess, "transformers_"):
            raise _Unsupported("first step is not a fitted ColumnTransformer")
        if getattr(preprocess, "sparse_output_", False):
            raise _Unsupported("ColumnTransformer produces sparse output")
        if (getattr(preprocess, "_sklearn_output_config", None) or {}).get("transform") not in (
            None,
            "default",
        ):
            raise _Unsupported("ColumnTransformer has a non-default set_output")
        if hasattr(estimator, "feature_names_in_"):
            raise _Unsupported("the model was fitted with feature names")
        if not hasattr(estimator, "predict"):
            raise _Unsupported("the final step has no predict")
        numeric: list[tuple[str, Pipeline]] = []
        categorical: list[tuple[str, Pipeline]] = []
        order: list[str] = []
        for name, trans, columns in preprocess.transformers_:
            if isinstance(trans, str):
                if trans == "drop" or len(_as_list(columns)) == 0:
                    continue
                raise _Unsupported(f"transformer {name!r} is {trans!r}")
            cols = _as_list(columns)
            if not cols:
                continue
            if not all(isinstance(c, str) and c in self._sig.name_set for c in cols):
                raise _Unsupported(f"transformer {name!r} uses columns not in the signature")
            kind = _branch_kind(trans)
            (numeric if kind == "numeric" else categorical).append((cols, trans))
            order.append(kind)
        if not numeric and not categorical:
            raise _Unsupported("no transformers")
        if order != sorted(order, key=lambda k: k != "numeric"):  # our layout: numeric blocks first
            raise _Unsupported("numeric and categorical blocks are interleaved")
        if len(numeric) > 1 or len(categorical) > 1:
            raise _Unsupported("more than one block per kind")

        width = 0
        self._num_names: tuple[str, ...] = ()
        self._num_getter = None
        self._num_keep = self._num_fill = self._num_mean = self._num_scale = None
        if numeric:
            cols, branch = numeric[0]
            imputer, scaler = branch.steps[-2][1], branch.steps[-1][1]
            stats = np.asarray(imputer.statistics_, dtype=float)
            keep = None if imputer.keep_empty_features else ~np.isnan(stats)
            if keep is not None and keep.all():
                keep = None
            fill = stats if keep is None else stats[keep]
            if keep is not None and not keep.any():
                raise _Unsupported("every numeric column was dropped by the imputer")
            n_num = fill.shape[0]
            self._num_names = tuple(cols)
            self._num_getter = _tuple_getter(cols)
            self._num_keep = None if keep is None else np.flatnonzero(keep)
            self._num_fill = fill.copy()
            self._num_mean = np.asarray(scaler.mean_, dtype=float).copy() if scaler.with_mean else None
            self._num_scale = np.asarray(scaler.scale_, dtype=float).copy() if scaler.with_std else None
            for arr in (self._num_mean, self._num_scale):
                if arr is not None and arr.shape != (n_num,):
                    raise _Unsupported("scaler and imputer disagree on the number of columns")
            width = n_num
        self._n_num = width

        self._cat_names: tuple[str, ...] = ()
        self._cat_getter = None
        self._cat_lookups: tuple[dict[str, int], ...] = ()
        self._cat_fills: tuple[int | None, ...] = ()
        if categorical:
            cols, branch = categorical[0]
            imputer, encoder = branch.steps[-2][1], branch.steps[-1][1]
            stats = np.asarray(imputer.statistics_, dtype=object)
            if imputer.keep_empty_features:
                raise _Unsupported("categorical imputer keeps empty features")
            kept = [j for j, s in enumerate(stats.tolist()) if not _is_nan_value(s)]
            if not kept:
                raise _Unsupported("every categorical column was dropped by the imputer")
            if len(encoder.categories_) != len(kept):
                raise _Unsupported("encoder and imputer disagree on the number of columns")
            lookups, fills = [], []
            offset = width
            for j, cats in zip(kept, encoder.categories_, strict=True):
                values = cats.tolist()
                if not all(type(v) is str for v in values):
                    raise _Unsupported("one-hot categories are not all strings")
                lookup = {v: offset + k for k, v in enumerate(values)}
                lookups.append(lookup)
                fills.append(lookup.get(stats[j]) if isinstance(stats[j], str) else None)
                offset += len(values)
            self._cat_names = tuple(cols[j] for j in kept)
            self._cat_getter = _tuple_getter(self._cat_names)
            self._cat_lookups = tuple(lookups)
            self._cat_fills = tuple(fills)
            width = offset
        self.n_columns = width
        n_in = getattr(estimator, "n_features_in_", width)
        if n_in != width:
            raise _Unsupported(f"the model expects {n_in} columns, the compiled transform gives {width}")
        self.kernel = _kernel_for(estimator)
        self._table = None
        self.vector_max_rows = 0
        if self.kernel in ("forest", "hist_gradient_boosting"):
            try:
                self._table = _TreeTable.from_estimator(estimator, self.classes is not None)
            except _TooBig:
                pass  # tree by tree (still without joblib / OpenMP overhead)
            except Exception:  # unexpected internals: call the estimator itself
                self.kernel = "estimator"
            if self._table is not None:
                self.vector_max_rows = self._table.worthwhile_rows(self.kernel)
                if self.vector_max_rows < 1:
                    self._table = None

    def _probe_instances(self) -> list[dict[str, Any]]:
        """Rows touching every category, nulls, an unseen category and extreme numbers."""
        n_rows = max([8] + [len(lk) + 2 for lk in self._cat_lookups])
        num_index = {name: j for j, name in enumerate(self._num_names)}
        cat_values = {name: list(lk) for name, lk in zip(self._cat_names, self._cat_lookups, strict=True)}
        factors = (0.0, 1.0, -1.5, 3.25, -40.0, 1e6, 0.5, -0.25)
        rows = []
        for i in range(n_rows):
            row: dict[str, Any] = {}
            for name in self.feature_names:
                if name in cat_values:
                    cats = cat_values[name]
                    k = i % (len(cats) + 2)
                    row[name] = cats[k] if k < len(cats) else (None if k == len(cats) else "__unseen__")
                elif name in num_index and self._num_keep is None:
                    j = num_index[name]
                    if i % 5 == 4:
                        row[name] = None
                    else:
                        mean = 0.0 if self._num_mean is None else float(self._num_mean[j])
                        scale = 1.0 if self._num_scale is None else float(self._num_scale[j])
                        value = mean + factors[(i + j) % len(factors)] * scale
                        row[name] = round(value) if i % 5 == 3 and math.isfinite(value) else value
                else:
                    row[name] = None if i % 3 == 0 else float(i)
            rows.append(row)
        return rows

    # prediction -----------------------------------------------------------------------------------------

    def validate(self, instances: Any, *, max_instances: int) -> None:
        """``validate_instances`` against this model's signature (prepared once)."""
        _validate(instances, self._sig, max_instances)

    def transform_rows(self, instances: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The float matrix the final estimator sees (C-contiguous, one row per instance)."""
        if len(instances) == 0 and self.n_columns is not None:
            return np.zeros((0, self.n_columns))
        if self.fast:
            try:
                return self._transform_fast(instances)
            except (_NeedsPipeline, KeyError, TypeError, ValueError, OverflowError):
                pass
        return np.ascontiguousarray(self.pipeline[:-1].transform(self._frame(instances)))

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> tuple[list, list[dict[str, float]] | None]:
        """Predictions and (for classifiers) per-instance ``{class: probability}`` dicts.

        Classification labels are strings; regression values Python floats.
        Expects instances that passed ``validate`` (others are still answered
        exactly, through the pipeline, as far as the pipeline accepts them).
        """
        if len(instances) == 0:
            return [], ([] if self._has_proba else None)
        labels, proba = self._predict_arrays(instances)
        predictions = labels.tolist()
        if proba is None:
            return predictions, None
        classes = self.classes
        return predictions, [dict(zip(classes, row, strict=True)) for row in proba.tolist()]

    def _predict_arrays(self, instances: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray | None]:
        if self.fast:
            try:
                X = self._transform_fast(instances)
            except (_NeedsPipeline, KeyError, TypeError, ValueError, OverflowError):
                return self._predict_pipeline(instances)
            return self._call_estimator(X)
        return self._predict_pipeline(instances)

    def _frame(self, instances: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """The instances as the pipeline takes them (``apps.ml.prepare``)."""
        return prepare_for(self.pipeline, pd.DataFrame(list(instances), columns=list(self.feature_names)))

    def _predict_pipeline(
        self, instances: Sequence[Mapping[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        frame = self._frame(instances)
        labels = np.asarray(self.pipeline.predict(frame))
        proba = np.asarray(self.pipeline.predict_proba(frame), dtype=float) if self._has_proba else None
        return labels, proba

    def _transform_fast(
        self, instances: Sequence[Mapping[str, Any]], by_column: bool | None = None
    ) -> np.ndarray:
        n = len(instances)
        width = self.n_columns
        out = np.zeros((n, width), dtype=np.float64)
        if self._num_getter is not None:
            getter = self._num_getter
            rows = [getter(inst) for inst in instances]
            num = np.array(rows)
            kind = num.dtype.kind
            if kind != "f":
                if kind in "iu":
                    num = num.astype(np.float64)
                elif kind == "O" and set(map(type, num.ravel())) <= _NUMERIC_TYPES:
                    num = np.array(rows, dtype=np.float64)  # None → NaN; ints too large for int64
                else:  # text or booleans: outside the contract, let pandas decide what they mean
                    raise _NeedsPipeline
            if num.shape != (n, len(self._num_names)):
                raise _NeedsPipeline
            if self._num_keep is not None:
                num = num[:, self._num_keep]
            missing = ~np.isfinite(num)
            if missing.any():
                num = np.where(missing, self._num_fill, num)
            if self._num_mean is not None:
                num -= self._num_mean
            if self._num_scale is not None:
                num /= self._num_scale
            out[:, : self._n_num] = num
        if self._cat_getter is not None:
            if by_column is False or (by_column is None and n <= _ROW_LOOP_MAX):
                self._encode_rows(instances, out)
            else:
                self._encode_columns(instances, out)
        return out

    def _encode_rows(self, instances: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
        """Set the one-hot columns of a few instances, value by value."""
        getter = self._cat_getter
        lookups_fills = tuple(zip(self._cat_lookups, self._cat_fills, strict=True))
        width = out.shape[1]
        positions: list[int] = []
        append = positions.append
        saw_other = False
        base = 0
        for inst in instances:
            for (lookup, fill), value in zip(lookups_fills, getter(inst), strict=True):
                if type(value) is str:
                    col = lookup.get(value)
                elif value is None:
                    col = fill
                else:
                    saw_other = True
                    col = _nonstr_column(lookup, fill, value)
                if col is not None:
                    append(base + col)
            base += width
        if saw_other and len(instances) > 1 and self._bool_number_clash(instances):
            raise _NeedsPipeline
        if positions:
            out.ravel()[positions] = 1.0

    def _encode_columns(self, instances: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
        """Set the one-hot columns of many instances, a feature at a time (dict lookups in C)."""
        for name, lookup, fill in zip(self._cat_names, self._cat_lookups, self._cat_fills, strict=True):
            values = [inst[name] for inst in instances]
            cols = list(map(lookup.get, values))  # right for every string; None for anything else
            kinds = set(map(type, values))
            if kinds != {str}:
                if bool in kinds and (int in kinds or float in kinds) and _has_zero_or_one(values):
                    raise _NeedsPipeline  # see _bool_number_clash
                for i, value in enumerate(values):
                    if type(value) is not str:
                        cols[i] = fill if value is None else _nonstr_column(lookup, fill, value)
            col_array = np.array(cols, dtype=np.float64)  # None (unseen category) → NaN
            rows = np.flatnonzero(col_array == col_array)
            out[rows, col_array[rows].astype(np.intp)] = 1.0

    def _bool_number_clash(self, instances: Sequence[Mapping[str, Any]]) -> bool:
        """Does a categorical column of this batch hold both a boolean and a number equal to 0 or 1?

        The pipeline labels categories with ``pd.factorize``, which treats
        ``True``/``1``/``1.0`` (and ``False``/``0``/``0.0``) as one value, so
        in such a batch all of them get the text of whichever came first.
        Only the pipeline itself reproduces that; single rows are unaffected.
        """
        for name in self._cat_names:
            has_bool = has_number = False
            for inst in instances:
                value = inst[name]
                kind = type(value)
                if kind is bool:
                    has_bool = True
                elif (kind is int or kind is float) and (value == 0 or value == 1):
                    has_number = True
                else:
                    continue
                if has_bool and has_number:
                    return True
        return False

    def _call_estimator(
        self, X: np.ndarray, vectorize: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels/values and probabilities of the final estimator for the model matrix ``X``.

        For tree ensembles, requests of at most ``vector_max_rows`` rows walk
        every tree at once with numpy (``_TreeTable``); larger ones go tree by
        tree through scikit-learn's Cython. Both add the trees' leaf values in
        scikit-learn's order, so results are identical. ``vectorize`` forces
        one or the other (for verification).
        """
        est = self.estimator
        kernel = self.kernel
        if kernel == "forest":
            X32 = np.asarray(X, dtype=np.float32)
            table = self._table
            if vectorize is None:
                vectorize = X.shape[0] <= self.vector_max_rows
            if vectorize and table is not None and not np.isnan(X32).any():
                leaf_values = table.leaf_values(X32)  # (n, trees, outputs)
                n, n_trees, width = leaf_values.shape
                chain = np.zeros((n, n_trees + 1, width), dtype=np.float64)
                chain[:, 1:, :] = leaf_values
                total = np.add.accumulate(chain, axis=1)[:, -1, :]  # 0 + v0 + v1 + …, in tree order
            else:
                width = 1 if self.classes is None else est.n_classes_
                total = np.zeros((X.shape[0], width), dtype=np.float64)
                for tree in est.estimators_:
                    total += tree.tree_.predict(X32)[:, :width]
            if self.classes is None:
                y = total[:, 0].copy()
                y /= len(est.estimators_)
                return y, None
            proba = np.ascontiguousarray(total)
            proba /= len(est.estimators_)
            return est.classes_.take(np.argmax(proba, axis=1), axis=0), proba
        if kernel == "hist_gradient_boosting":
            table = self._table
            if vectorize is None:
                vectorize = X.shape[0] <= self.vector_max_rows
            if vectorize and table is not None and not np.isnan(X).any():
                n = X.shape[0]
                k = est.n_trees_per_iteration_
                leaf_values = table.leaf_values(np.ascontiguousarray(X, dtype=np.float64))
                chain = np.zeros((n, table.n_trees // k + 2, k), dtype=np.float64)
                chain[:, 1, :] = est._baseline_prediction.reshape(k)
                chain[:, 2:, :] = leaf_values.reshape(n, table.n_trees // k, k)
                raw = np.asfortranarray(np.add.accumulate(chain, axis=1)[:, -1, :])  # 0 + baseline + trees
            else:
                raw = est._raw_predict(X, n_threads=1)
            if self.classes is None:
                return est._loss.link.inverse(raw.ravel()), None
            proba = est._loss.predict_proba(raw)
            if raw.shape[1] == 1:
                encoded = (raw.ravel() > 0).astype(int)
            else:
                encoded = np.argmax(raw, axis=1)
            return est.classes_[encoded], proba
        if kernel == "logistic":
            # LogisticRegression.predict and predict_proba both start from decision_function: call it once.
            scores = est.decision_function(X)
            if scores.ndim == 1:
                labels = est.classes_.take((scores > 0).astype(int), axis=0)
                positive = special.expit(scores)
                return labels, np.stack([1 - positive, positive], axis=1)
            labels = est.classes_.take(np.argmax(scores, axis=1), axis=0)
            return labels, softmax(scores, copy=False)
        if kernel == "knn":
            # The neighbour search runs OpenMP threads; on a shared server they mostly spin-wait (p99 of
            # 80 ms instead of 3 ms for one row, measured): one thread, for this calling thread only.
            with _one_openmp_thread():
                if _knn_predict_is_proba_argmax(est, X):
                    # KNeighborsClassifier.predict itself returns classes_[argmax(predict_proba(X))] here.
                    proba = est.predict_proba(X)
                    return est.classes_[np.argmax(proba, axis=1)], proba
                return np.asarray(est.predict(X)), np.asarray(est.predict_proba(X), dtype=float)
        labels = np.asarray(est.predict(X))
        proba = np.asarray(est.predict_proba(X), dtype=float) if self._has_proba else None
        return labels, proba


_OPENMP: list[Any] = []  # [threadpoolctl selection of the loaded OpenMP runtimes, or None]
_OPENMP_LOCK = threading.Lock()


def _one_openmp_thread() -> contextlib.AbstractContextManager:
    """Limit OpenMP to one thread in the calling thread (libgomp keeps the limit per thread).

    ~6 µs; the threadpoolctl controller (slow to build: it scans loaded
    libraries) is made once per process.
    """
    if not _OPENMP:
        with _OPENMP_LOCK:
            if not _OPENMP:
                try:
                    from threadpoolctl import ThreadpoolController

                    _OPENMP.append(ThreadpoolController().select(user_api="openmp"))
                except Exception:  # pragma: no cover - no threadpoolctl: run unlimited
                    _OPENMP.append(None)
    selection = _OPENMP[0]
    if selection is None or not selection.lib_controllers:
        return contextlib.nullcontext()
    return selection.limit(limits=1)


def _knn_predict_is_proba_argmax(estimator: Any, X: np.ndarray) -> bool:
    """The condition under which scikit-learn's KNeighborsClassifier.predict goes through predict_proba."""
    if estimator.weights != "uniform" or getattr(estimator, "_fit_method", None) != "brute":
        return False
    try:
        from sklearn.metrics._pairwise_distances_reduction import ArgKminClassMode
    except ImportError:  # pragma: no cover - private module moved: two calls are still exact
        return False
    return bool(ArgKminClassMode.is_usable_for(X, estimator._fit_X, estimator.metric))


def _has_zero_or_one(values: list) -> bool:
    return any((type(v) is int or type(v) is float) and (v == 0 or v == 1) for v in values)


class _TreeTable:
    """Every tree of an ensemble as flat node arrays, walked for all (row, tree) pairs at once.

    Same decisions as scikit-learn's Cython (``x <= threshold`` goes left,
    comparing in float64; inputs never hold NaN here — callers check), so the
    leaf reached is the same. Leaves point to themselves, so walking the
    maximum depth of the ensemble lands every pair on its leaf.
    """

    __slots__ = ("feature", "threshold", "left", "right", "values", "roots", "n_trees", "depth")

    def __init__(self, trees: list[tuple[np.ndarray, ...]], depth: int):
        sizes = np.array([len(t[0]) for t in trees], dtype=np.intp)
        roots = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        own = np.repeat(roots, sizes)
        feature, threshold, left, right, is_leaf, values = (
            np.concatenate(parts) for parts in zip(*trees, strict=True)
        )
        index = np.arange(len(feature), dtype=np.intp)
        is_leaf = is_leaf.astype(bool)
        self.feature = np.where(is_leaf, 0, feature).astype(np.intp)
        self.threshold = np.where(is_leaf, 0.0, threshold).astype(np.float64)
        self.left = np.where(is_leaf, index, left.astype(np.intp) + own)
        self.right = np.where(is_leaf, index, right.astype(np.intp) + own)
        self.values = np.ascontiguousarray(values, dtype=np.float64)
        self.roots = roots
        self.n_trees = len(trees)
        self.depth = int(depth)
        for arr in (self.feature, self.threshold, self.left, self.right, self.values):
            arr.setflags(write=False)

    @classmethod
    def from_estimator(cls, estimator: Any, classifier: bool) -> _TreeTable:
        if isinstance(estimator, RandomForestClassifier | RandomForestRegressor):
            width = estimator.n_classes_ if classifier else 1
            if sum(tree.tree_.node_count for tree in estimator.estimators_) > _MAX_TABLE_NODES:
                raise _TooBig
            trees, depth = [], 0
            for tree in estimator.estimators_:
                t = tree.tree_
                if t.n_outputs != 1:
                    raise _Unsupported("multi-output tree")
                leaf = t.children_left == -1
                trees.append(
                    (t.feature, t.threshold, t.children_left, t.children_right, leaf, t.value[:, 0, :width])
                )
                depth = max(depth, t.max_depth)
            return cls(trees, depth)
        if sum(len(p.nodes) for iteration in estimator._predictors for p in iteration) > _MAX_TABLE_NODES:
            raise _TooBig
        trees, depth = [], 0
        for iteration in estimator._predictors:
            for predictor in iteration:
                nodes = predictor.nodes
                if nodes["is_categorical"].any():
                    raise _Unsupported("categorical splits")
                trees.append((
                    nodes["feature_idx"],
                    nodes["num_threshold"],
                    nodes["left"],
                    nodes["right"],
                    nodes["is_leaf"],
                    nodes["value"].reshape(-1, 1),
                ))  # fmt: skip
                depth = max(depth, int(nodes["depth"].max()))
        return cls(trees, depth)

    def worthwhile_rows(self, kernel: str) -> int:
        """Up to how many rows walking all trees at once beats scikit-learn's tree-by-tree loop.

        Cost model fitted on a 2-core x86 machine (µs): numpy walk ≈ depth ×
        (4 + 0.0056 · rows · trees); scikit-learn ≈ trees × (c + 0.05 · rows),
        c = 3.4 for a forest tree, 7.6 for a boosting tree (it also opens an
        OpenMP region per tree).
        """
        per_tree = 3.4 if kernel == "forest" else 7.6
        gain = self.n_trees * per_tree - 4.0 * self.depth
        if gain <= 0:
            return 0
        slope = self.n_trees * (0.0056 * self.depth - 0.05)
        return 1_000_000 if slope <= 0 else int(gain / slope)

    def leaf_values(self, X: np.ndarray) -> np.ndarray:
        """(rows, trees, width) leaf values for a C-contiguous ``X`` without NaN."""
        n, n_features = X.shape
        flat = X.ravel()
        node = np.tile(self.roots, n)
        base = np.repeat(np.arange(n, dtype=np.intp) * n_features, self.n_trees)
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        for _ in range(self.depth):
            x = flat.take(base + feature.take(node))
            node = np.where(x <= threshold.take(node), left.take(node), right.take(node))
        return self.values.take(node, axis=0).reshape(n, self.n_trees, self.values.shape[1])


class _TooBig(Exception):
    """The ensemble has too many nodes to copy into a ``_TreeTable``."""


class _Unsupported(Exception):
    """The pipeline's structure is not the one the compiler knows."""


def _as_list(columns: Any) -> list:
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, slice) or callable(columns):
        raise _Unsupported("ColumnTransformer columns are not given by name")
    return list(np.asarray(columns, dtype=object).tolist()) if not isinstance(columns, list) else columns


def _branch_kind(trans: Any) -> str:
    """Return "numeric" or "categorical" when ``trans`` is exactly one of build_pipeline's branches.

    Two shapes: (imputer, scaler or encoder) since pipelines are made of scikit-learn's
    components only, and the previous release's (cast, imputer, scaler or encoder), whose
    FunctionTransformer does inside the pipeline what ``apps.ml.prepare`` does before it.
    """
    if type(trans) is not Pipeline or len(trans.steps) not in (2, 3):
        raise _Unsupported(f"unexpected transformer {type(trans).__name__}")
    *cast, imputer, last = (step for _, step in trans.steps)
    if cast and (type(cast[0]) is not FunctionTransformer or cast[0].kw_args):
        raise _Unsupported("unexpected branch steps")
    if type(imputer) is not SimpleImputer:
        raise _Unsupported("unexpected branch steps")
    if imputer.add_indicator or not _is_nan_value(imputer.missing_values):
        raise _Unsupported("imputer with indicator or non-NaN missing_values")
    cast_func = cast[0].func if cast else None
    if cast_func in (None, _as_float_frame) and imputer.strategy == "median" and type(last) is StandardScaler:
        if not hasattr(last, "scale_") and last.with_std:
            raise _Unsupported("scaler not fitted")
        return "numeric"
    if cast_func in (None, _as_str_frame) and imputer.strategy == "most_frequent" and type(last) is OneHotEncoder:
        if (
            last.drop_idx_ is not None
            or getattr(last, "_infrequent_enabled", False)
            or last.handle_unknown not in ("ignore", "infrequent_if_exist")
            or last.sparse_output
            or np.dtype(last.dtype) != np.float64
        ):
            raise _Unsupported("one-hot encoder with drop, infrequent categories, sparse or non-float output")
        return "categorical"
    raise _Unsupported("unexpected branch configuration")


def _kernel_for(estimator: Any) -> str:
    kind = type(estimator)
    if kind in (RandomForestClassifier, RandomForestRegressor):
        if getattr(estimator, "n_outputs_", 1) == 1 and estimator.n_jobs in (None, 1):
            return "forest"
    if kind is LogisticRegression and hasattr(estimator, "decision_function"):
        return "logistic"
    if kind is KNeighborsClassifier and not getattr(estimator, "outputs_2d_", True):
        return "knn"
    if kind in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        if hasattr(estimator, "_raw_predict") and hasattr(estimator, "_loss"):
            return "hist_gradient_boosting"
    return "estimator"


def _nonstr_column(lookup: dict[str, int], fill: int | None, value: Any) -> int | None:
    """One-hot column of a non-string categorical value, labelled as ``train._label_str`` does."""
    kind = type(value)
    if kind is bool:
        return lookup.get("True" if value else "False")
    if kind is float:
        if value != value:
            return fill
        if value.is_integer():
            return lookup.get(str(int(value)))
        if math.isinf(value):
            return lookup.get(str(value))
        return lookup.get(repr(value))
    if kind is int:
        if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
            return lookup.get(str(value))
        raise _NeedsPipeline  # pandas may store it in a float column, changing its text
    raise _NeedsPipeline
