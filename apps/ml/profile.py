"""Schema inference and column profiles for uploaded tables.

The profile is stored as JSON and drawn by the dashboard, so everything here
returns plain Python values (no numpy scalars, no NaN: missing numbers are
``None``). Work is vectorised per column: one sort serves min, max, the
quantiles and the distinct count of a numeric column; one ``value_counts``
serves the distinct count and the top values of a categorical one.

Role rules used by :func:`infer_schema`, first match wins:

1. bool dtype -> ``boolean``; datetime dtype -> ``datetime``.
2. Non-null values are exactly one of the pairs {0, 1}, {true, false},
   {yes, no}, {y, n}, {t, f} (strings compared case-insensitively) ->
   ``boolean``. Any other two-value set (say {"M", "F"}) stays categorical.
3. Numbers: an integer column with more than 50 values, all unique, that is
   monotonic or named like an id (``id``, ``user_id``, ``userId``) -> ``id``;
   otherwise ``numeric``.
4. Strings (object, ``str`` or category dtype):
   a. at least 95% of a 200-value sample parse as dates -> ``datetime``;
   b. more than 50 values, all unique, mean length <= 50 -> ``id``
      (long unique strings are free text, not keys);
   c. distinct values <= max(50, 5% of rows) -> ``categorical``;
   d. mean length > 50 characters -> ``text``;
   e. otherwise ``categorical``.
5. Anything else (timedelta, complex, mixed objects) -> ``text``.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "id")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
HISTOGRAM_BINS = 30
TOP_VALUES = 20
DATE_SAMPLE = 200
DATE_SHARE = 0.95

Progress = Callable[[int, str], None]

_BOOL_PAIRS = [frozenset(p) for p in (("0", "1"), ("true", "false"), ("yes", "no"), ("y", "n"), ("t", "f"))]
# "id", "user_id", "user-id", "userId", "UserID" -- but not "paid" or "valid".
_ID_NAME = re.compile(r"(^|[_\- ])(id|Id|ID)$|[a-z0-9](Id|ID)$")
_DATE_LIKE = re.compile(
    r"^\s*(\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"
    r"|\d{1,2}\s+[A-Za-z]{3,9}\.?,?\s+\d{2,4}"
    r"|[A-Za-z]{3,9}\.?\s+\d{1,2},?\s+\d{2,4}"
    r"|\d{8}T\d{4,6})"
)
_DATE_FORMATS = [
    f"{d}{t}"
    for d in ("%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%Y", "%m-%d-%Y")
    for t in ("", " %H:%M", " %H:%M:%S")
]


# --------------------------------------------------------------------------- schema


def infer_schema(df: pd.DataFrame) -> list[dict[str, Any]]:
    """One ``{"name", "dtype", "role", "nullable"}`` entry per column, in order."""
    rows = len(df)
    return [
        {
            "name": _name(col),
            "dtype": str(s.dtype),
            "role": infer_role(_name(col), s, rows),
            "nullable": bool(s.isna().any()),
        }
        for col, s in df.items()
    ]


def infer_role(name: str, s: pd.Series, rows: int | None = None) -> str:
    """Role of one column by the rules in the module docstring."""
    rows = len(s) if rows is None else rows
    if ptypes.is_bool_dtype(s.dtype):
        return "boolean"
    if ptypes.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    values = s.dropna()
    if ptypes.is_numeric_dtype(s.dtype) and not ptypes.is_complex_dtype(s.dtype):
        return _numeric_role(name, values)
    if _is_stringish(s):
        return _string_role(values, rows)
    return "text"


def _numeric_role(name: str, values: pd.Series) -> str:
    arr = values.to_numpy(dtype="float64")
    zeros, ones = arr == 0, arr == 1
    if zeros.any() and ones.any() and bool((zeros | ones).all()):
        return "boolean"
    n = len(values)
    if ptypes.is_integer_dtype(values.dtype) and n > 50 and values.is_unique:
        monotonic = values.is_monotonic_increasing or values.is_monotonic_decreasing
        if monotonic or _ID_NAME.search(name):
            return "id"
    return "numeric"


def _string_role(values: pd.Series, rows: int) -> str:
    n = len(values)
    if n == 0:
        return "categorical"
    counts = values.value_counts(sort=False)
    counts = counts[counts > 0]
    distinct = len(counts)
    if distinct <= 8 and frozenset(str(v).strip().lower() for v in counts.index) in _BOOL_PAIRS:
        return "boolean"
    if _looks_like_dates(values):
        return "datetime"
    lengths = pd.Index(counts.index.astype(str)).str.len().to_numpy(dtype="float64")
    mean_length = float((lengths * counts.to_numpy()).sum() / n)
    if distinct == n and n > 50 and mean_length <= 50:
        return "id"
    if distinct <= max(50, 0.05 * rows):
        return "categorical"
    if mean_length > 50:
        return "text"
    return "categorical"


def _looks_like_dates(values: pd.Series) -> bool:
    """Cheap regex screen on a sample first, so category codes never reach the date parser."""
    picks = np.random.default_rng(0).choice(len(values), size=min(len(values), DATE_SAMPLE), replace=False)
    sample = values.iloc[np.sort(picks)].astype(str)
    if sample.str.match(_DATE_LIKE.pattern).mean() < DATE_SHARE:
        return False
    parsed = parse_datetimes(sample)
    return bool(parsed.notna().mean() >= DATE_SHARE)


def parse_datetimes(s: pd.Series) -> pd.Series:
    """Parse date strings with one format for the whole column.

    ISO 8601 first, then common day/month layouts (a single format keeps
    "03/04/2024" from meaning March in one row and April in the next), and
    per-value inference only as a last resort.
    """
    s = s.astype(str).where(s.notna())
    target = s.notna().sum() * DATE_SHARE
    attempts: list[dict[str, Any]] = [{"format": "ISO8601"}]
    attempts += [{"format": f} for f in _DATE_FORMATS]
    attempts += [{"format": "mixed"}, {"format": "mixed", "utc": True}]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kwargs in attempts:
            try:
                parsed = pd.to_datetime(s, errors="coerce", **kwargs)
            except (ValueError, TypeError, OverflowError):
                continue
            if parsed.notna().sum() >= target:
                return parsed
    return pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns]")


# --------------------------------------------------------------------------- profile


def profile_table(
    df: pd.DataFrame, schema: list[dict[str, Any]], *, progress: Progress | None = None
) -> dict[str, Any]:
    """``{"rows", "columns": {name: profile}}`` for the columns named in ``schema``.

    ``progress(percent, message)`` is called before each column and once at 100
    so a background task can report how far it has got.
    """
    by_name = {_name(c): c for c in df.columns}
    rows = len(df)
    total = len(schema)
    columns: dict[str, Any] = {}
    for i, entry in enumerate(schema):
        name = entry["name"]
        if name not in by_name:
            raise KeyError(f"column {name!r} from the schema is not in the table")
        if progress is not None:
            progress(int(100 * i / max(total, 1)), f"Profiling column {name} ({i + 1}/{total})")
        columns[name] = profile_column(df[by_name[name]], entry["role"], rows)
    if progress is not None:
        progress(100, f"Profiled {total} columns")
    return {"rows": rows, "columns": columns}


def profile_column(s: pd.Series, role: str, rows: int | None = None) -> dict[str, Any]:
    """Counts common to every role plus the role-specific summary."""
    rows = len(s) if rows is None else rows
    missing = int(s.isna().sum())
    out: dict[str, Any] = {
        "role": role,
        "count": len(s) - missing,
        "missing": missing,
        "missing_share": missing / rows if rows else 0.0,
        "distinct": 0,
    }
    if role == "numeric":
        out.update(_numeric_profile(s))
    elif role == "datetime":
        out.update(_datetime_profile(s))
    else:
        out.update(_categorical_profile(s, role))
    return out


def _numeric_profile(s: pd.Series) -> dict[str, Any]:
    """Moments, quantiles and histogram over finite values; infinities are counted apart.

    Excluding +/-inf keeps one overflowed cell from turning the mean into
    ``inf`` (which JSON cannot carry anyway).
    """
    if not (ptypes.is_numeric_dtype(s.dtype) or ptypes.is_bool_dtype(s.dtype)):
        s = pd.to_numeric(s.astype("object"), errors="coerce")
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    finite_mask = np.isfinite(values)
    finite = values if finite_mask.all() else values[finite_mask]
    infinite = values[~finite_mask]
    n = len(finite)
    out: dict[str, Any] = {"infinite": len(infinite)}
    if n == 0:
        out.update(dict.fromkeys(("mean", "std", "min", "q05", "q25", "q50", "q75", "q95", "max")))
        out["distinct"] = len(np.unique(infinite))
        out["histogram"] = {"edges": [], "counts": []}
        return out
    ordered = np.sort(finite)
    quantiles = np.quantile(ordered, QUANTILES)
    counts, edges = np.histogram(ordered, bins=HISTOGRAM_BINS)
    mean = finite.mean()
    out.update(
        {
            "distinct": int(np.count_nonzero(np.diff(ordered))) + 1 + len(np.unique(infinite)),
            "mean": json_value(mean),
            "std": json_value(np.sqrt(np.sum((finite - mean) ** 2) / (n - 1))) if n > 1 else None,
            "min": json_value(ordered[0]),
            "q05": json_value(quantiles[0]),
            "q25": json_value(quantiles[1]),
            "q50": json_value(quantiles[2]),
            "q75": json_value(quantiles[3]),
            "q95": json_value(quantiles[4]),
            "max": json_value(ordered[-1]),
            "histogram": {"edges": [json_value(e) for e in edges], "counts": [int(c) for c in counts]},
        }
    )
    reference = _reference(finite, "numeric")
    if reference is not None:
        out["reference"] = reference
    return out


def _categorical_profile(s: pd.Series, role: str) -> dict[str, Any]:
    """Top values by count; the long tail is summed into ``other_count``."""
    counts = s.value_counts(dropna=True)
    counts = counts[counts > 0]  # category dtype lists unused categories with 0
    total = int(counts.sum())
    top = counts.iloc[:TOP_VALUES]
    out: dict[str, Any] = {
        "distinct": len(counts),
        "top": [
            {"value": json_value(v), "count": int(c), "share": int(c) / total}
            for v, c in zip(top.index, top.to_numpy(), strict=True)
        ],
        "other_count": total - int(top.sum()),
    }
    if role == "text" and total:
        lengths = pd.Index(counts.index.astype(str)).str.len().to_numpy(dtype="float64")
        out["mean_length"] = float((lengths * counts.to_numpy()).sum() / total)
    if role in ("categorical", "boolean"):
        reference = _reference(s.dropna().to_numpy(), "categorical")
        if reference is not None:
            out["reference"] = reference
    return out


def _datetime_profile(s: pd.Series) -> dict[str, Any]:
    present = s.dropna()
    parsed = present if ptypes.is_datetime64_any_dtype(s.dtype) else parse_datetimes(present)
    valid = parsed.dropna()
    return {
        "distinct": int(present.nunique()),
        "unparsed": len(present) - len(valid),
        "min": json_value(valid.min()) if len(valid) else None,
        "max": json_value(valid.max()) if len(valid) else None,
    }


def _reference(values: np.ndarray, kind: str) -> dict[str, Any] | None:
    """Drift reference from apps.ml.drift, or None while that module does not exist yet."""
    try:
        from apps.ml.drift import build_reference
    except ModuleNotFoundError as exc:
        if exc.name != "apps.ml.drift":
            raise
        return None
    return build_reference(values, kind=kind)


# --------------------------------------------------------------------------- helpers


def _name(col: Any) -> str:
    return col if isinstance(col, str) else str(col)


def _is_stringish(s: pd.Series) -> bool:
    dtype = s.dtype
    return (
        ptypes.is_string_dtype(dtype)
        or ptypes.is_object_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def json_value(value: Any) -> Any:
    """A JSON-safe Python value: numpy scalars unwrapped, NaN/inf -> None, times -> ISO."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)
