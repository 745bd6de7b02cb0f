"""Serving a model trained elsewhere: its MLmodel signature is the request contract, and the
skops-loaded estimator's own ``predict``/``predict_proba`` are the answers.

Each instance maps every feature of the signature to a JSON value of its colspec type:

* ``long`` / ``integer``: a JSON integer (a float only when it is whole, ``3.0``), within
  the type's range; never a boolean, a string or null (the column cannot hold a missing value);
* ``double`` / ``float``: a JSON number; null (or NaN) only for a column the signature marks
  ``required: false``, where it is a missing value;
* ``string``: a JSON string; null only for a column that is not required;
* ``boolean``: ``true`` or ``false``.

A feature the signature does not require may be left out (it is then missing). Unknown keys
are refused. The instances become a DataFrame typed as ``mlflow.pyfunc`` types it (see
``apps.ml.external_model.typed_frame``), so the answers equal the artifact's own in a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from apps.ml.errors import MLError
from apps.ml.external_model import column_type, typed_frame

from .contract import MAX_COLLECTED_ERRORS, MAX_EXTRA_KEYS, InputError, json_type

INT_RANGES = {"long": 2**63, "integer": 2**31}
FIND_REFUSED_LIMIT = 1_000  # instances tried one by one to name the one a model refuses
NUMBER_TYPES = frozenset({"double", "float"})


class _Column:
    __slots__ = ("name", "kind", "optional")

    def __init__(self, feature: Mapping[str, Any]):
        self.name = feature["name"]
        self.kind = column_type(feature)
        # an integer or boolean column cannot hold a missing value (pandas would make it float or
        # object and the model's notebook never saw that): such a column is required whatever it says
        self.optional = feature.get("required") is False and self.kind in NUMBER_TYPES | {"string"}


def _int_problem(column: _Column, value: Any) -> str | None:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return f"'{column.name}' is {column.kind}: it cannot be missing (send a whole number)."
        return f"'{column.name}' must be a whole number ({column.kind}), got {json_type(value)} {str(value)[:40]}."
    bound = INT_RANGES[column.kind]
    if not -bound <= value < bound:
        return f"'{column.name}' is out of the {column.kind} range."
    return None


def _number_problem(column: _Column, value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None if column.optional else (
            f"'{column.name}' must not be missing: the signature requires it (send a number).")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"'{column.name}' must be a JSON number ({column.kind}), got {json_type(value)}."
    if isinstance(value, float) and not math.isfinite(value):
        return f"'{column.name}' must be a finite number."
    if isinstance(value, int) and abs(value) > 2**53:
        return f"'{column.name}' is too large for a {column.kind}."
    return None


def _value_problem(column: _Column, value: Any) -> str | None:
    kind = column.kind
    if kind in INT_RANGES:
        return _int_problem(column, value)
    if kind in NUMBER_TYPES:
        return _number_problem(column, value)
    if kind == "boolean":
        return None if isinstance(value, bool) else f"'{column.name}' must be true or false, got {json_type(value)}."
    if kind == "string":
        if value is None:
            return None if column.optional else f"'{column.name}' must not be missing: the signature requires it."
        if not isinstance(value, str):
            return f"'{column.name}' must be a string, got {json_type(value)}."
        return None if "\x00" not in value else f"'{column.name}' contains a NUL character, which is not allowed."
    return f"'{column.name}' has the type {kind!r}, which cannot be served."


def _instance_problems(i: int, instance: Any, columns: Sequence[_Column], names: frozenset[str], expected: str,
                       budget: int) -> tuple[list[dict], int]:
    """The instance's first ``budget`` problems and how many it has in all (messages beyond the budget
    are counted, never built: a hostile body must not cost a message per key)."""
    problems: list[dict] = []
    count = 0

    def problem(field, message):
        nonlocal count
        count += 1
        if len(problems) < budget:
            problems.append({"instance": i, "field": field, "message": message() if callable(message) else message})

    if not isinstance(instance, dict):
        problem(None, f"Instance {i} must be an object mapping feature names to values, got {json_type(instance)}.")
        return problems, count
    if len(instance) > len(columns) + MAX_EXTRA_KEYS:
        problem(None, f"Instance {i} has {len(instance):,} keys; the model expects {len(columns)} features.")
        return problems, count
    unknown = [key for key in instance if key not in names]
    if len(unknown) > MAX_EXTRA_KEYS:
        problem(None, lambda: f"Instance {i} has {len(unknown):,} unknown features (the first: "
                              f"{', '.join(repr(str(k)[:40]) for k in unknown[:5])}); the model expects: {expected}.")
    else:
        for key in unknown:
            problem(str(key), lambda key=key: f"Unknown feature {str(key)[:60]!r}; the model expects: {expected}.")
    for column in columns:
        if column.name not in instance:
            if not column.optional:
                problem(column.name, f"Missing feature '{column.name}'.")
            continue
        message = _value_problem(column, instance[column.name])
        if message:
            problem(column.name, message)
    return problems, count


class ExternalPredictor:
    """Validate against an MLflow signature and predict with the estimator itself (thread-safe: no state)."""

    fast = False
    path = "skops"
    kernel = "estimator"
    fallback_reason = "a model trained elsewhere is answered by its own predict"

    def __init__(self, model: Any, signature: Sequence[Mapping[str, Any]]):
        if not signature:
            raise InputError([{"instance": None, "field": None, "message": "The model has no input signature."}])
        self.model = model
        self.signature = [dict(f) for f in signature]
        self._columns = tuple(_Column(f) for f in signature)
        self._names = frozenset(c.name for c in self._columns)
        self._expected = ", ".join(sorted(self._names)[:20]) + (", …" if len(self._names) > 20 else "")
        self.feature_names = tuple(c.name for c in self._columns)
        classes = getattr(model, "classes_", None)
        self.task_type = "classification" if classes is not None else "regression"
        self.classes = tuple(str(c) for c in np.asarray(classes).tolist()) if classes is not None else None
        self._has_proba = classes is not None and hasattr(model, "predict_proba")

    def validate(self, instances: Any, *, max_instances: int) -> None:
        def request_error(message):
            return InputError([{"instance": None, "field": None, "message": message}])

        if not isinstance(instances, list):
            raise request_error(f"'instances' must be a list of objects, got {json_type(instances)}.")
        if not instances:
            raise request_error("'instances' is empty: send at least one instance.")
        if len(instances) > max_instances:
            raise request_error(f"Too many instances: {len(instances)}; at most {max_instances} per request.")
        errors: list[dict] = []
        total = 0
        for i, instance in enumerate(instances):
            found, count = _instance_problems(i, instance, self._columns, self._names, self._expected,
                                              MAX_COLLECTED_ERRORS - len(errors))
            total += count
            errors.extend(found)
        if total:
            raise InputError(errors, total)

    def frame(self, instances: Sequence[Mapping[str, Any]]):
        """The instances as the model's notebook would hold them: the signature's columns and dtypes."""
        rows = [{c.name: instance.get(c.name) for c in self._columns} for instance in instances]
        return typed_frame(rows, self.signature)

    def predict(self, instances: Sequence[Mapping[str, Any]]) -> tuple[list, list[dict[str, float]] | None]:
        """Predictions as the model gives them (as JSON-ready Python values) and, for classifiers,
        per instance ``{str(class): probability}``."""
        if len(instances) == 0:
            return [], ([] if self._has_proba else None)
        try:
            return self._answers(instances)
        except (ArithmeticError, LookupError, TypeError, ValueError, MLError) as exc:
            # valid for the signature, refused by the model itself (an unknown category, a value its
            # own code rejects): the caller's data, so a 400 naming the first instance it refuses
            raise InputError([{"instance": self._first_refused(instances), "field": None,
                               "message": f"The model refused the instance: {type(exc).__name__}: {str(exc)[:300]}"}],
                             ) from None

    def _answers(self, instances) -> tuple[list, list[dict[str, float]] | None]:
        X = self.frame(instances)
        predictions = np.asarray(self.model.predict(X)).tolist()
        if not self._has_proba:
            return predictions, None
        proba = np.asarray(self.model.predict_proba(X), dtype=float).tolist()
        return predictions, [dict(zip(self.classes, row, strict=True)) for row in proba]

    def _first_refused(self, instances) -> int | None:
        if len(instances) == 1:
            return 0
        for i, instance in enumerate(instances[:FIND_REFUSED_LIMIT]):
            try:
                self._answers([instance])
            except (ArithmeticError, LookupError, TypeError, ValueError, MLError):
                return i
        return None
