"""A training spec: everything needed to reproduce a training run on a given table.

Validated on construction (hyperparameters by scikit-learn's own constraints, through the
catalog), so an invalid spec never reaches a job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from apps.ml.catalog import TASK_TYPES, clean_params, get_algorithm
from apps.ml.errors import SpecError

FEATURE_ROLES = ("numeric", "categorical", "boolean")


def _as_int(value: Any, field_name: str, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):  # not isdigit: "²" passes it
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise SpecError(
            f"{field_name} must be an integer between {low} and {high}, got {value!r}.", field=field_name
        )
    return int(value)


@dataclass(frozen=True)
class TrainingSpec:
    """Everything needed to reproduce a training run on a given table.

    Validated (and ``params`` cleaned to the full set of curated
    hyperparameters) on construction, so an invalid spec never reaches a job.
    """

    task_type: str
    target: str
    features: list[dict[str, str]]
    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    cv_folds: int = 5
    holdout_fraction: float = 0.2
    split_seed: int = 0
    random_state: int = 0

    def __post_init__(self) -> None:
        if self.task_type not in TASK_TYPES:
            raise SpecError(
                f"task_type must be one of {', '.join(TASK_TYPES)}, got {self.task_type!r}.",
                field="task_type",
            )
        if not isinstance(self.target, str) or not self.target:
            raise SpecError("Choose a target column.", field="target")
        features = _clean_features(self.features, self.target)
        entry = get_algorithm(self.algorithm)
        if entry.task_type != self.task_type:
            raise SpecError(
                f"{entry.name} ({entry.key}) is a {entry.task_type} algorithm, "
                f"but the task is {self.task_type}.",
                field="algorithm",
            )
        params = clean_params(self.algorithm, self.params)
        try:
            fraction = float(self.holdout_fraction)
        except (TypeError, ValueError):
            fraction = -1.0
        if isinstance(self.holdout_fraction, bool) or not 0.05 <= fraction <= 0.5:
            raise SpecError(
                f"holdout_fraction must be between 0.05 and 0.5, got {self.holdout_fraction!r}.",
                field="holdout_fraction",
            )
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "holdout_fraction", fraction)
        object.__setattr__(self, "cv_folds", _as_int(self.cv_folds, "cv_folds", 2, 10))
        object.__setattr__(self, "split_seed", _as_int(self.split_seed, "split_seed", 0, 2**32 - 1))
        object.__setattr__(self, "random_state", _as_int(self.random_state, "random_state", 0, 2**32 - 1))

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def names_with_role(self, *roles: str) -> list[str]:
        return [f["name"] for f in self.features if f["role"] in roles]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSpec:
        """Rebuild (and re-validate) a spec; unknown keys are refused, not ignored."""
        known = {f for f in cls.__dataclass_fields__}
        for key in data:
            if key not in known:
                raise SpecError(f"Unknown training spec field {key!r}.", field=str(key))
        missing = [k for k in ("task_type", "target", "features", "algorithm") if k not in data]
        if missing:
            raise SpecError(f"Training spec is missing {', '.join(missing)}.", field=missing[0])
        return cls(**dict(data))


def _clean_features(features: Any, target: str) -> list[dict[str, str]]:
    if not isinstance(features, list | tuple) or not features:
        raise SpecError("Choose at least one feature column.", field="features")
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in features:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise SpecError("Each feature must be a mapping with a 'name' and a 'role'.", field="features")
        name, role = item["name"], item.get("role")
        if role not in FEATURE_ROLES:
            raise SpecError(
                f"Feature {name!r} has role {role!r}; expected one of {', '.join(FEATURE_ROLES)}.",
                field="features",
            )
        if name == target:
            raise SpecError(f"The target {name!r} cannot also be a feature.", field="features")
        if name in seen:
            raise SpecError(f"Feature {name!r} is listed twice.", field="features")
        seen.add(name)
        out.append({"name": name, "role": role})
    return out
