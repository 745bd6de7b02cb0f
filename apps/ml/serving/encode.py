"""Instances (parsed JSON) → the model's float matrix, with numpy and dicts instead of pandas.

Reproduces the prepared frame (``apps.ml.prepare``) through the pipeline's preprocessing
bit for bit. What it cannot reproduce exactly raises ``NeedsPipeline``, and the request is
answered by the pipeline: integers beyond 2**53 in a categorical feature (pandas may
store them as floats), a batch whose categorical column mixes booleans with the numbers
0/1 (``pd.factorize`` treats ``True`` and ``1`` as one value and names both after
whichever came first), or values outside the contract when validation was skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .contract import MAX_EXACT_INT
from .layout import CategoricalBlock, Layout, NumericBlock

ROW_LOOP_MAX = 16  # up to this many instances, categorical values are encoded row by row
_NUMERIC_TYPES = frozenset({int, float, type(None)})
_PROBE_FACTORS = (0.0, 1.0, -1.5, 3.25, -40.0, 1e6, 0.5, -0.25)


class NeedsPipeline(Exception):
    """This request holds something the compiled path cannot reproduce exactly; use the pipeline."""


def transform(layout: Layout, instances: Sequence[Mapping[str, Any]], by_column: bool | None = None) -> np.ndarray:
    """The model matrix of ``instances`` (C-contiguous). ``by_column`` forces one categorical encoder."""
    n = len(instances)
    out = np.zeros((n, layout.n_columns), dtype=np.float64)
    if layout.numeric is not None:
        out[:, : layout.numeric.width] = _numeric(layout.numeric, instances)
    if layout.categorical is not None:
        if by_column is False or (by_column is None and n <= ROW_LOOP_MAX):
            _encode_rows(layout.categorical, instances, out)
        else:
            _encode_columns(layout.categorical, instances, out)
    return out


def _numeric(block: NumericBlock, instances: Sequence[Mapping[str, Any]]) -> np.ndarray:
    getter = block.getter
    rows = [getter(inst) for inst in instances]
    num = np.array(rows)
    kind = num.dtype.kind
    if kind != "f":
        if kind in "iu":
            num = num.astype(np.float64)
        elif kind == "O" and set(map(type, num.ravel())) <= _NUMERIC_TYPES:
            num = np.array(rows, dtype=np.float64)  # None → NaN; ints too large for int64
        else:  # text or booleans: outside the contract, let pandas decide what they mean
            raise NeedsPipeline
    if num.shape != (len(instances), len(block.names)):
        raise NeedsPipeline
    if block.keep is not None:
        num = num[:, block.keep]
    missing = ~np.isfinite(num)
    if missing.any():
        num = np.where(missing, block.fill, num)
    if block.mean is not None:
        num -= block.mean
    if block.scale is not None:
        num /= block.scale
    return num


def _encode_rows(block: CategoricalBlock, instances: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
    """Set the one-hot columns of a few instances, value by value."""
    getter = block.getter
    lookups_fills = tuple(zip(block.lookups, block.fills, strict=True))
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
    if saw_other and len(instances) > 1 and _bool_number_clash(block, instances):
        raise NeedsPipeline
    if positions:
        out.ravel()[positions] = 1.0


def _encode_columns(block: CategoricalBlock, instances: Sequence[Mapping[str, Any]], out: np.ndarray) -> None:
    """Set the one-hot columns of many instances, a feature at a time (dict lookups in C)."""
    for name, lookup, fill in zip(block.names, block.lookups, block.fills, strict=True):
        values = [inst[name] for inst in instances]
        cols = list(map(lookup.get, values))  # right for every string; None for anything else
        kinds = set(map(type, values))
        if kinds != {str}:
            if bool in kinds and (int in kinds or float in kinds) and _has_zero_or_one(values):
                raise NeedsPipeline  # see _bool_number_clash
            for i, value in enumerate(values):
                if type(value) is not str:
                    cols[i] = fill if value is None else _nonstr_column(lookup, fill, value)
        col_array = np.array(cols, dtype=np.float64)  # None (unseen category) → NaN
        rows = np.flatnonzero(col_array == col_array)
        out[rows, col_array[rows].astype(np.intp)] = 1.0


def _bool_number_clash(block: CategoricalBlock, instances: Sequence[Mapping[str, Any]]) -> bool:
    """Does a categorical column of this batch hold both a boolean and a number equal to 0 or 1?

    ``apps.ml.prepare`` labels categories with ``pd.factorize``, which treats
    ``True``/``1``/``1.0`` (and ``False``/``0``/``0.0``) as one value, so in such a
    batch all of them get the text of whichever came first. Only the pipeline path
    reproduces that; single rows are unaffected.
    """
    for name in block.names:
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


def _has_zero_or_one(values: list) -> bool:
    return any((type(v) is int or type(v) is float) and (v == 0 or v == 1) for v in values)


def _nonstr_column(lookup: dict[str, int], fill: int | None, value: Any) -> int | None:
    """One-hot column of a non-string categorical value, labelled as ``prepare.label_text`` does."""
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
        if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:
            return lookup.get(str(value))
        raise NeedsPipeline  # pandas may store it in a float column, changing its text
    raise NeedsPipeline


def probe_instances(layout: Layout, feature_names: Sequence[str]) -> list[dict[str, Any]]:
    """Rows touching every category, nulls, an unseen category and extreme numbers (for verification)."""
    num, cat = layout.numeric, layout.categorical
    lookups = cat.lookups if cat is not None else ()
    n_rows = max([8] + [len(lk) + 2 for lk in lookups])
    num_index = {name: j for j, name in enumerate(num.names)} if num is not None and num.keep is None else {}
    cat_values = {name: list(lk) for name, lk in zip(cat.names, lookups, strict=True)} if cat is not None else {}
    rows = []
    for i in range(n_rows):
        row: dict[str, Any] = {}
        for name in feature_names:
            if name in cat_values:
                cats = cat_values[name]
                k = i % (len(cats) + 2)
                row[name] = cats[k] if k < len(cats) else (None if k == len(cats) else "__unseen__")
            elif name in num_index:
                row[name] = None if i % 5 == 4 else _probe_number(num, num_index[name], i)
            else:
                row[name] = None if i % 3 == 0 else float(i)
        rows.append(row)
    return rows


def _probe_number(block: NumericBlock, j: int, i: int) -> float | int:
    mean = 0.0 if block.mean is None else float(block.mean[j])
    scale = 1.0 if block.scale is None else float(block.scale[j])
    value = mean + _PROBE_FACTORS[(i + j) % len(_PROBE_FACTORS)] * scale
    return round(value) if i % 5 == 3 and math.isfinite(value) else value
