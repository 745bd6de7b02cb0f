"""Frame preparation: the casts our pipelines need, applied before the pipeline.

A catalog pipeline (``apps.ml.train.build_pipeline``) is made of scikit-learn's own
components only, so its skops artifact loads wherever scikit-learn and skops are
installed. Those components are strict about their input, so our training, gates and
generic predict paths feed them a prepared frame:

* **numeric** columns become float64: text that is not a number becomes NaN
  (``pandas.to_numeric(errors="coerce")``), and so do ``±inf``; NaN is then imputed
  with the training median.
* **categorical and boolean** columns become canonical strings (``label_text``), NaN
  kept for the imputer: ``3``, ``3.0`` and ``"3"`` are all ``"3"``; ``True`` is
  ``"True"``; ``2.5`` is ``"2.5"``. An integer column read as float (because it had
  gaps) therefore matches the categories learnt from an int column.

**In a notebook** (``mlflow.pyfunc.load_model`` or ``skops.io.load`` on our artifact),
feed the bare pipeline a DataFrame with the signature's columns where numeric columns
are floats (NaN for missing) and categorical/boolean columns are those canonical
strings (NaN for missing); then its ``predict``/``predict_proba`` equal the predict
API's answers. ``prepare_for(pipeline, frame)`` does exactly that, and is what this
project calls; a raw frame of strings, ints and booleans would make the imputer fail
or the one-hot encoder treat ``3`` and ``"3"`` as different categories.

Pipelines written by the previous release did these casts inside themselves
(``apps.ml.train._as_float_frame`` / ``_as_str_frame``); the casts are idempotent, so
preparing a frame for such a pipeline changes nothing. Pipelines that are not ours
(another structure) are handed their frame unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_BRANCH = "numeric"
CATEGORICAL_BRANCH = "categorical"


def label_text(value: Any) -> str:
    """Canonical text for a category or class: 3.0 → "3" so an int column read as float matches."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def canonical_labels(series: pd.Series) -> np.ndarray:
    """Object array of canonical strings, NaN where missing (one ``str()`` per distinct value).

    ``pd.factorize`` treats ``True`` and ``1`` (``False`` and ``0``) as one value, so in a
    column mixing them all get the text of whichever came first.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    lookup = np.array([label_text(u) for u in uniques] + [np.nan], dtype=object)
    return lookup[codes]


def numeric_values(series: pd.Series) -> np.ndarray:
    """float64 values of a numeric feature: non-numbers and ±inf become NaN."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    values[~np.isfinite(values)] = np.nan
    return values


def prepare_features(frame: pd.DataFrame, *, numeric: Sequence[str], categorical: Sequence[str]) -> pd.DataFrame:
    """A copy of ``frame`` whose ``numeric`` columns are float64 and ``categorical`` ones canonical strings.

    Other columns are kept as they are (the pipeline drops what it does not use).
    """
    columns: dict[Any, pd.Series] = {}
    numeric_set, categorical_set = set(numeric), set(categorical)
    for name in frame.columns:
        if name in numeric_set:
            columns[name] = pd.Series(numeric_values(frame[name]), index=frame.index, dtype=float)
        elif name in categorical_set:
            # object, not pandas' inferred "str" dtype: the pipeline was fitted on object columns
            columns[name] = pd.Series(canonical_labels(frame[name]), index=frame.index, dtype=object)
        else:
            columns[name] = frame[name]
    return pd.DataFrame(columns, index=frame.index, columns=frame.columns)


def catalog_columns(pipeline: Any) -> tuple[list[str], list[str]] | None:
    """(numeric, categorical) columns of a pipeline ``build_pipeline`` made, of either release; else None.

    Recognised by shape: a ``Pipeline`` whose first step "preprocess" is a
    ColumnTransformer of at most a "numeric" and a "categorical" branch over named columns.
    """
    steps = getattr(pipeline, "steps", None)
    if not steps or steps[0][0] != "preprocess":
        return None
    preprocess = steps[0][1]
    transformers = getattr(preprocess, "transformers_", None) or getattr(preprocess, "transformers", None)
    if not isinstance(transformers, list):
        return None
    found: dict[str, list[str]] = {NUMERIC_BRANCH: [], CATEGORICAL_BRANCH: []}
    for name, _, columns in transformers:
        if name == "remainder":
            continue
        if name not in found or isinstance(columns, str):
            return None
        columns = list(columns)
        if not all(isinstance(c, str) for c in columns):
            return None
        found[name] = columns
    return found[NUMERIC_BRANCH], found[CATEGORICAL_BRANCH]


def prepare_for(pipeline: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as ``pipeline`` needs it: prepared for our pipelines, unchanged for any other."""
    columns = catalog_columns(pipeline)
    if columns is None:
        return frame
    numeric, categorical = columns
    return prepare_features(frame, numeric=numeric, categorical=categorical)
