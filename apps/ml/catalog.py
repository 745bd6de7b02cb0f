"""Curated catalog of the algorithms the dashboard offers.

Only a handful of estimators and a few hyperparameters each are exposed: enough
to be useful, few enough that every combination is tested and every saved
pipeline is made of types we can list (see ``trusted_types``) for safe skops
loading. Defaults and validity rules are *not* duplicated here: defaults come
from the estimator's own ``get_params()`` and values are checked with
scikit-learn's own ``_parameter_constraints``, so the catalog cannot drift from
the installed scikit-learn.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import (
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from apps.ml.errors import SpecError

TASK_TYPES = ("classification", "regression")
PARAM_TYPES = ("int", "float", "bool", "choice")
MAX_GRID_CANDIDATES = 50

_TRUE_STRINGS = {"true", "1", "yes", "on"}
_FALSE_STRINGS = {"false", "0", "no", "off"}
_NULL_STRINGS = {"none", "null"}


@dataclass(frozen=True)
class ParamSpec:
    """One tunable hyperparameter: its name, UI type and whether None is allowed."""

    name: str
    type: str
    nullable: bool = False


@dataclass(frozen=True)
class AlgorithmEntry:
    """A catalog entry. Defaults and choices are read from scikit-learn on demand."""

    key: str
    task_type: str
    name: str
    estimator_class: type[BaseEstimator]
    param_specs: tuple[ParamSpec, ...]

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.param_specs]

    def defaults(self) -> dict[str, Any]:
        """scikit-learn's own defaults for the curated parameters."""
        all_params = self.estimator_class().get_params()
        return {p.name: _plain(all_params[p.name]) for p in self.param_specs}

    def constraints(self, name: str) -> list[Any]:
        return list(self.estimator_class._parameter_constraints[name])

    def choices(self, name: str) -> list[str] | None:
        """Allowed strings for a ``choice`` parameter, from sklearn's StrOptions."""
        options: set[str] = set()
        for constraint in self.constraints(name):
            if isinstance(constraint, StrOptions):
                options |= set(constraint.options) - set(getattr(constraint, "deprecated", None) or ())
        return sorted(options) or None

    def accepts_random_state(self) -> bool:
        return "random_state" in self.estimator_class().get_params()

    def make_estimator(self, params: Mapping[str, Any], random_state: int | None = None) -> BaseEstimator:
        """Instantiate with cleaned ``params`` (+ ``random_state`` when the estimator has one)."""
        kwargs = dict(params)
        if random_state is not None and self.accepts_random_state():
            kwargs["random_state"] = random_state
        return self.estimator_class(**kwargs)

    def describe(self) -> dict[str, Any]:
        """JSON-serialisable description for forms and the API."""
        defaults = self.defaults()
        params = []
        for spec in self.param_specs:
            item: dict[str, Any] = {
                "name": spec.name,
                "type": spec.type,
                "default": defaults[spec.name],
                "nullable": spec.nullable,
            }
            if spec.type == "choice":
                item["choices"] = self.choices(spec.name)
            params.append(item)
        cls = self.estimator_class
        return {
            "key": self.key,
            "task_type": self.task_type,
            "name": self.name,
            "estimator": f"{cls.__module__}.{cls.__qualname__}",
            "params": params,
        }


_FOREST = (
    ParamSpec("n_estimators", "int"),
    ParamSpec("max_depth", "int", nullable=True),
    ParamSpec("min_samples_leaf", "int"),
)
_HGB = (
    ParamSpec("learning_rate", "float"),
    ParamSpec("max_iter", "int"),
    ParamSpec("max_leaf_nodes", "int", nullable=True),
    ParamSpec("l2_regularization", "float"),
)

_ENTRIES: tuple[AlgorithmEntry, ...] = (
    AlgorithmEntry(
        "logistic_regression",
        "classification",
        "Logistic regression",
        LogisticRegression,
        (ParamSpec("C", "float"), ParamSpec("max_iter", "int")),
    ),
    AlgorithmEntry(
        "random_forest_classifier", "classification", "Random forest", RandomForestClassifier, _FOREST
    ),
    AlgorithmEntry(
        "hist_gradient_boosting_classifier",
        "classification",
        "Histogram gradient boosting",
        HistGradientBoostingClassifier,
        _HGB,
    ),
    AlgorithmEntry(
        "knn_classifier",
        "classification",
        "k-nearest neighbours",
        KNeighborsClassifier,
        (ParamSpec("n_neighbors", "int"), ParamSpec("weights", "choice")),
    ),
    AlgorithmEntry("ridge", "regression", "Ridge regression", Ridge, (ParamSpec("alpha", "float"),)),
    AlgorithmEntry("random_forest_regressor", "regression", "Random forest", RandomForestRegressor, _FOREST),
    AlgorithmEntry(
        "hist_gradient_boosting_regressor",
        "regression",
        "Histogram gradient boosting",
        HistGradientBoostingRegressor,
        _HGB,
    ),
    AlgorithmEntry(
        "linear_regression",
        "regression",
        "Linear regression",
        LinearRegression,
        (ParamSpec("fit_intercept", "bool"),),
    ),
)
CATALOG: dict[str, AlgorithmEntry] = {entry.key: entry for entry in _ENTRIES}


def list_algorithms(task_type: str | None = None) -> list[dict[str, Any]]:
    """Describe every algorithm (optionally only one task type), in catalog order."""
    if task_type is not None and task_type not in TASK_TYPES:
        raise SpecError(
            f"Unknown task type {task_type!r}; expected one of: {', '.join(TASK_TYPES)}.", field="task_type"
        )
    return [e.describe() for e in _ENTRIES if task_type is None or e.task_type == task_type]


def get_algorithm(key: str) -> AlgorithmEntry:
    """Look up a catalog entry; unknown keys are a user error, not a KeyError."""
    try:
        return CATALOG[key]
    except (KeyError, TypeError):
        raise SpecError(
            f"Unknown algorithm {key!r}. Known algorithms: {', '.join(CATALOG)}.", field="algorithm"
        ) from None


def clean_params(key: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Coerce and validate hyperparameters for algorithm ``key``.

    Returns *all* curated parameters of the algorithm, with scikit-learn's
    default filled in for those not given (or given as ""), so that a stored
    spec records exactly what was trained. Values from HTML forms arrive as
    strings and are coerced first; whatever cannot be coerced is handed to
    scikit-learn's own constraint check, whose message is passed on in a
    ``SpecError`` naming the field — so bad values fail here, before a job runs.
    """
    entry = get_algorithm(key)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise SpecError("Hyperparameters must be a mapping of name to value.", field="params")
    allowed = entry.param_names
    for name in params:
        if name not in allowed:
            raise SpecError(
                f"Unknown parameter {name!r} for {entry.name} ({entry.key}). "
                f"Allowed parameters: {', '.join(allowed)}.",
                field=f"params.{name}",
            )
    defaults = entry.defaults()
    cleaned: dict[str, Any] = {}
    for spec in entry.param_specs:
        raw = params.get(spec.name, "")
        if isinstance(raw, str) and raw.strip() == "":
            cleaned[spec.name] = defaults[spec.name]
            continue
        value = _coerce(spec, raw, entry)
        _validate(entry, spec, value)
        cleaned[spec.name] = _plain(value)
    return cleaned


def _coerce(spec: ParamSpec, raw: Any, entry: AlgorithmEntry) -> Any:
    """Best-effort conversion of form strings / JSON numbers to the parameter's type.

    Anything that does not convert is returned unchanged, so scikit-learn's
    validator produces the error message (it knows what is allowed).
    """
    field = f"params.{spec.name}"
    value = raw.strip() if isinstance(raw, str) else raw
    if isinstance(value, str) and value.lower() in _NULL_STRINGS:
        value = None
    if value is None:
        if not spec.nullable:
            raise SpecError(
                f"'{spec.name}' cannot be empty for {entry.name}; leave it blank to use the default.",
                field=field,
            )
        return None
    if spec.type in ("int", "float"):
        if isinstance(value, str):
            value = _parse_number(value)
        if isinstance(value, bool) or (
            isinstance(value, numbers.Number) and not isinstance(value, numbers.Real)
        ):
            raise SpecError(f"'{spec.name}' must be a number, got {raw!r}.", field=field)
        if isinstance(value, numbers.Real):
            if not math.isfinite(float(value)):
                raise SpecError(f"'{spec.name}' must be a finite number, got {raw!r}.", field=field)
            if spec.type == "float":
                return float(value)
            if float(value).is_integer():
                return int(value)
        return value  # e.g. "deep" or 2.5 for an int: scikit-learn decides and explains
    if spec.type == "bool":
        if isinstance(value, str):
            low = value.lower()
            if low in _TRUE_STRINGS:
                return True
            if low in _FALSE_STRINGS:
                return False
        elif isinstance(value, numbers.Integral) and int(value) in (0, 1):
            return bool(value)
        return value
    # choice
    choices = entry.choices(spec.name) or []
    if not isinstance(value, str) or value not in choices:
        raise SpecError(
            f"'{spec.name}' must be one of {', '.join(map(repr, choices))}; got {raw!r}.", field=field
        )
    return value


def _parse_number(text: str) -> Any:
    """int or float from text; the original text when it is not a number."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _validate(entry: AlgorithmEntry, spec: ParamSpec, value: Any) -> None:
    """Check ``value`` with scikit-learn's own constraint for this parameter."""
    try:
        validate_parameter_constraints(
            {spec.name: entry.constraints(spec.name)},
            {spec.name: value},
            caller_name=entry.estimator_class.__name__,
        )
    except InvalidParameterError as exc:
        raise SpecError(str(exc), field=f"params.{spec.name}") from None


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so cleaned params are JSON-serialisable."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value


def expand_grid(grid: Mapping[str, Any], algorithm: str) -> list[dict[str, Any]]:
    """Cartesian product of a hyperparameter grid, each candidate cleaned.

    ``grid`` maps parameter name to a list of values (a scalar counts as a
    one-value list). Candidates that become identical after cleaning (e.g. "10"
    and 10) are kept once. More than ``MAX_GRID_CANDIDATES`` is refused up front
    because every candidate costs a full cross-validated training run.
    """
    if not isinstance(grid, Mapping):
        raise SpecError("The search grid must map parameter names to lists of values.", field="grid")
    names = list(grid)
    value_lists: list[list[Any]] = []
    for name in names:
        values = grid[name]
        if isinstance(values, str) or not isinstance(values, list | tuple | set | frozenset):
            values = [values]
        values = list(values)
        if not values:
            raise SpecError(f"The grid gives no values for {name!r}.", field=f"params.{name}")
        value_lists.append(values)
    total = math.prod(len(v) for v in value_lists)
    if total > MAX_GRID_CANDIDATES:
        raise SpecError(
            f"The grid has {total} combinations; at most {MAX_GRID_CANDIDATES} are allowed.", field="grid"
        )
    seen: list[dict[str, Any]] = []
    for combo in itertools.product(*value_lists):
        cleaned = clean_params(algorithm, dict(zip(names, combo, strict=True)))
        if cleaned not in seen:
            seen.append(cleaned)
    return seen


# --- skops trust probe ----------------------------------------------------------------------------------


def _probe_untrusted_types() -> set[str]:
    """Types skops does not trust by default that pipelines of the catalog contain.

    Fits tiny pipelines of every catalog entry (binary and multiclass targets
    for classifiers) and collects ``skops.io.get_untrusted_types``. Used by
    ``trusted_types``.
    """
    from apps.ml.train import (  # lazy: train imports us
        LEGACY_ARTIFACT_TYPES,
        TrainingSpec,
        _target_array,
        build_pipeline,
        prepare_inputs,
    )

    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(
        {
            "num": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "cat": pd.Series(rng.choice(["a", "b", "c"], n), dtype=object).where(rng.random(n) > 0.1),
            "flag": rng.random(n) < 0.5,
            "y_bin": np.tile(["no", "yes"], n // 2),
            "y_multi": np.tile(["x", "y", "z"], n // 3),
            "y_reg": rng.normal(size=n),
        }
    )
    features = [
        {"name": "num", "role": "numeric"},
        {"name": "cat", "role": "categorical"},
        {"name": "flag", "role": "boolean"},
    ]
    found: set[str] = set(LEGACY_ARTIFACT_TYPES)  # what the previous release's artifacts name
    for entry in CATALOG.values():
        targets = ["y_bin", "y_multi"] if entry.task_type == "classification" else ["y_reg"]
        small = {"n_estimators": 3} if "n_estimators" in entry.param_names else {}
        for target in targets:
            spec = TrainingSpec(entry.task_type, target, features, entry.key, small, split_seed=0)
            pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
            found.update(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    return found


@functools.lru_cache(maxsize=1)
def _trusted_types_cached() -> tuple[str, ...]:
    return tuple(sorted(_probe_untrusted_types()))


def trusted_types() -> list[str]:
    """Fully-qualified type names a saved pipeline of this catalog may contain.

    Computed (once per process) by fitting tiny pipelines of every entry on
    binary, multiclass and regression targets and asking skops which types it
    would not trust by default — so the list follows the installed
    scikit-learn instead of being maintained by hand.
    """
    return list(_trusted_types_cached())
