"""What a fitted catalog pipeline's preprocessing does, read into plain arrays and dicts.

``read_layout`` accepts exactly the structure ``apps.ml.train.build_pipeline`` makes, of
either release: a ColumnTransformer with at most one numeric branch (median imputer,
standard scaler) and one categorical branch (most-frequent imputer, one-hot encoder),
numeric first; the previous release's branches also start with the FunctionTransformer
casts that ``apps.ml.prepare`` now applies before the pipeline. Anything else raises
``Unsupported`` and the predictor uses the pipeline itself.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from apps.ml.train import _as_float_frame, _as_str_frame


class Unsupported(Exception):
    """The pipeline's structure is not the one the compiler knows."""


@dataclass(frozen=True)
class NumericBlock:
    """Impute (``fill``) and standardise (``mean``, ``scale``) the numeric features, in order."""

    names: tuple[str, ...]
    getter: Callable[[Mapping[str, Any]], tuple]
    keep: np.ndarray | None  # positions the imputer keeps (it drops columns without training values)
    fill: np.ndarray
    mean: np.ndarray | None
    scale: np.ndarray | None

    @property
    def width(self) -> int:
        return self.fill.shape[0]


@dataclass(frozen=True)
class CategoricalBlock:
    """One-hot columns: per feature, canonical text → column of the model matrix."""

    names: tuple[str, ...]
    getter: Callable[[Mapping[str, Any]], tuple]
    lookups: tuple[dict[str, int], ...]
    fills: tuple[int | None, ...]  # the imputed category's column (None: it is not one-hot encoded)


@dataclass(frozen=True)
class Layout:
    numeric: NumericBlock | None
    categorical: CategoricalBlock | None
    n_columns: int


def tuple_getter(names: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple]:
    if len(names) == 1:
        name = names[0]
        return lambda d: (d[name],)
    return operator.itemgetter(*names)


def is_nan_value(x: Any) -> bool:
    return isinstance(x, float) and x != x


def _as_list(columns: Any) -> list:
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, slice) or callable(columns):
        raise Unsupported("ColumnTransformer columns are not given by name")
    return list(np.asarray(columns, dtype=object).tolist()) if not isinstance(columns, list) else columns


def _check_encoder(encoder: OneHotEncoder) -> None:
    if (
        encoder.drop_idx_ is not None
        or getattr(encoder, "_infrequent_enabled", False)
        or encoder.handle_unknown not in ("ignore", "infrequent_if_exist")
        or encoder.sparse_output
        or np.dtype(encoder.dtype) != np.float64
    ):
        raise Unsupported("one-hot encoder with drop, infrequent categories, sparse or non-float output")


def branch_kind(trans: Any) -> str:
    """Return "numeric" or "categorical" when ``trans`` is exactly one of build_pipeline's branches.

    Two shapes: (imputer, scaler or encoder) since pipelines are made of scikit-learn's
    components only, and the previous release's (cast, imputer, scaler or encoder), whose
    FunctionTransformer does inside the pipeline what ``apps.ml.prepare`` does before it.
    """
    if type(trans) is not Pipeline or len(trans.steps) not in (2, 3):
        raise Unsupported(f"unexpected transformer {type(trans).__name__}")
    *cast, imputer, last = (step for _, step in trans.steps)
    if cast and (type(cast[0]) is not FunctionTransformer or cast[0].kw_args):
        raise Unsupported("unexpected branch steps")
    if type(imputer) is not SimpleImputer:
        raise Unsupported("unexpected branch steps")
    if imputer.add_indicator or not is_nan_value(imputer.missing_values):
        raise Unsupported("imputer with indicator or non-NaN missing_values")
    cast_func = cast[0].func if cast else None
    if cast_func in (None, _as_float_frame) and imputer.strategy == "median" and type(last) is StandardScaler:
        if not hasattr(last, "scale_") and last.with_std:
            raise Unsupported("scaler not fitted")
        return "numeric"
    if cast_func in (None, _as_str_frame) and imputer.strategy == "most_frequent" and type(last) is OneHotEncoder:
        _check_encoder(last)
        return "categorical"
    raise Unsupported("unexpected branch configuration")


def _branches(pipeline: Any, feature_names: frozenset[str]) -> tuple[list, list]:
    """The (columns, branch) pairs of each kind, checked against the layout the compiler knows."""
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        raise Unsupported("not a two-step (preprocess, model) Pipeline")
    preprocess, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if type(preprocess) is not ColumnTransformer or not hasattr(preprocess, "transformers_"):
        raise Unsupported("first step is not a fitted ColumnTransformer")
    if getattr(preprocess, "sparse_output_", False):
        raise Unsupported("ColumnTransformer produces sparse output")
    if (getattr(preprocess, "_sklearn_output_config", None) or {}).get("transform") not in (None, "default"):
        raise Unsupported("ColumnTransformer has a non-default set_output")
    if hasattr(estimator, "feature_names_in_"):
        raise Unsupported("the model was fitted with feature names")
    if not hasattr(estimator, "predict"):
        raise Unsupported("the final step has no predict")
    numeric: list[tuple[list, Pipeline]] = []
    categorical: list[tuple[list, Pipeline]] = []
    order: list[str] = []
    for name, trans, columns in preprocess.transformers_:
        if isinstance(trans, str):
            if trans == "drop" or len(_as_list(columns)) == 0:
                continue
            raise Unsupported(f"transformer {name!r} is {trans!r}")
        cols = _as_list(columns)
        if not cols:
            continue
        if not all(isinstance(c, str) and c in feature_names for c in cols):
            raise Unsupported(f"transformer {name!r} uses columns not in the signature")
        kind = branch_kind(trans)
        (numeric if kind == "numeric" else categorical).append((cols, trans))
        order.append(kind)
    if not numeric and not categorical:
        raise Unsupported("no transformers")
    if order != sorted(order, key=lambda k: k != "numeric"):  # our layout: numeric blocks first
        raise Unsupported("numeric and categorical blocks are interleaved")
    if len(numeric) > 1 or len(categorical) > 1:
        raise Unsupported("more than one block per kind")
    return numeric, categorical


def _numeric_block(cols: list[str], branch: Pipeline) -> NumericBlock:
    imputer, scaler = branch.steps[-2][1], branch.steps[-1][1]
    stats = np.asarray(imputer.statistics_, dtype=float)
    keep = None if imputer.keep_empty_features else ~np.isnan(stats)
    if keep is not None and keep.all():
        keep = None
    fill = stats if keep is None else stats[keep]
    if keep is not None and not keep.any():
        raise Unsupported("every numeric column was dropped by the imputer")
    mean = np.asarray(scaler.mean_, dtype=float).copy() if scaler.with_mean else None
    scale = np.asarray(scaler.scale_, dtype=float).copy() if scaler.with_std else None
    for arr in (mean, scale):
        if arr is not None and arr.shape != fill.shape:
            raise Unsupported("scaler and imputer disagree on the number of columns")
    return NumericBlock(tuple(cols), tuple_getter(cols), None if keep is None else np.flatnonzero(keep),
                        fill.copy(), mean, scale)


def _categorical_block(cols: list[str], branch: Pipeline, offset: int) -> tuple[CategoricalBlock, int]:
    imputer, encoder = branch.steps[-2][1], branch.steps[-1][1]
    stats = np.asarray(imputer.statistics_, dtype=object)
    if imputer.keep_empty_features:
        raise Unsupported("categorical imputer keeps empty features")
    kept = [j for j, s in enumerate(stats.tolist()) if not is_nan_value(s)]
    if not kept:
        raise Unsupported("every categorical column was dropped by the imputer")
    if len(encoder.categories_) != len(kept):
        raise Unsupported("encoder and imputer disagree on the number of columns")
    lookups, fills = [], []
    for j, cats in zip(kept, encoder.categories_, strict=True):
        values = cats.tolist()
        if not all(type(v) is str for v in values):
            raise Unsupported("one-hot categories are not all strings")
        lookup = {v: offset + k for k, v in enumerate(values)}
        lookups.append(lookup)
        fills.append(lookup.get(stats[j]) if isinstance(stats[j], str) else None)
        offset += len(values)
    names = tuple(cols[j] for j in kept)
    return CategoricalBlock(names, tuple_getter(names), tuple(lookups), tuple(fills)), offset


def read_layout(pipeline: Any, feature_names: frozenset[str]) -> Layout:
    """The layout of ``pipeline``'s preprocessing; ``Unsupported`` when it is not ours."""
    numeric, categorical = _branches(pipeline, feature_names)
    num_block = _numeric_block(*numeric[0]) if numeric else None
    width = num_block.width if num_block is not None else 0
    cat_block = None
    if categorical:
        cat_block, width = _categorical_block(*categorical[0], offset=width)
    n_in = getattr(pipeline.steps[1][1], "n_features_in_", width)
    if n_in != width:
        raise Unsupported(f"the model expects {n_in} columns, the compiled transform gives {width}")
    return Layout(num_block, cat_block, width)
