"""Data validation: schema drift between dataset versions and user-declared rules.

Each check yields one result row, so the dashboard can show exactly which
rule failed, on which column, what was seen and what was expected. Overall
status is the worst result. Data problems become ``fail`` results; only a
malformed *rules* document raises (:class:`SpecError`), because that is a
configuration mistake rather than something the data did.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from apps.ml.errors import SpecError
from apps.ml.profile import json_value

RULES = ("max_missing_share", "ranges", "allowed_categories", "min_rows", "unique_key")
_SEVERITY = {"pass": 0, "warn": 1, "fail": 2}


def schema_diff(previous: list[dict[str, Any]] | None, current: list[dict[str, Any]]) -> dict[str, Any]:
    """Columns added, removed and whose role changed since ``previous`` (all empty when None)."""
    if previous is None:
        return {"added": [], "removed": [], "retyped": []}
    before = {c["name"]: c for c in previous}
    after = {c["name"]: c for c in current}
    return {
        "added": [n for n in after if n not in before],
        "removed": [n for n in before if n not in after],
        "retyped": [
            {"name": n, "from": before[n]["role"], "to": after[n]["role"]}
            for n in after
            if n in before and before[n]["role"] != after[n]["role"]
        ],
    }


def validate_table(
    df: pd.DataFrame,
    schema: list[dict[str, Any]],
    *,
    previous_schema: list[dict[str, Any]] | None = None,
    rules: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the schema comparison and every rule; return the worst status and all results."""
    rules = rules or {}
    unknown = sorted(set(rules) - set(RULES))
    if unknown:
        raise SpecError(
            f"Unknown validation rule(s): {', '.join(unknown)}. Known rules: {', '.join(RULES)}.",
            field="rules",
        )
    results: list[dict[str, Any]] = []
    if previous_schema is not None:
        results += _schema_results(schema_diff(previous_schema, schema))
    if "min_rows" in rules:
        results.append(_min_rows(df, rules["min_rows"]))
    if "max_missing_share" in rules:
        results += _missing(df, rules["max_missing_share"])
    if "ranges" in rules:
        results += [_range(df, col, bounds) for col, bounds in _mapping(rules, "ranges").items()]
    if "allowed_categories" in rules:
        results += [
            _allowed(df, col, allowed) for col, allowed in _mapping(rules, "allowed_categories").items()
        ]
    if "unique_key" in rules:
        results.append(_unique_key(df, rules["unique_key"]))
    status = max((r["status"] for r in results), key=_SEVERITY.__getitem__, default="pass")
    return {"status": status, "results": results}


# --------------------------------------------------------------------------- schema


def _schema_results(diff: dict[str, Any]) -> list[dict[str, Any]]:
    out = [
        _result("schema", n, "fail", f"{n}: column was removed since the previous version", None, n)
        for n in diff["removed"]
    ]
    out += [
        _result("schema", r["name"], "warn", f"{r['name']}: role changed from {r['from']} to {r['to']}",
                r["to"], r["from"])
        for r in diff["retyped"]
    ]  # fmt: skip
    out += [
        _result("schema", n, "warn", f"{n}: column was added since the previous version", n, None)
        for n in diff["added"]
    ]
    if not out:
        out.append(_result("schema", None, "pass", "Schema is identical to the previous version", None, None))
    return out


# --------------------------------------------------------------------------- rules


def _min_rows(df: pd.DataFrame, minimum: Any) -> dict[str, Any]:
    minimum = _number(minimum, "min_rows")
    n = len(df)
    ok = n >= minimum
    message = f"{_count(n, 'row')}; at least {minimum:g} required"
    return _result("min_rows", None, "pass" if ok else "fail", message, n, minimum)


def _missing(df: pd.DataFrame, limits: Any) -> list[dict[str, Any]]:
    """``{"*": default, "col": limit}``; the default covers every column without its own limit."""
    if not isinstance(limits, dict):
        limits = {"*": limits}
    default = limits.get("*")
    out = [_missing_one(df, col, limit) for col, limit in limits.items() if col != "*"]
    if default is not None:
        out += [_missing_one(df, str(col), default) for col in df.columns if str(col) not in limits]
    return out


def _missing_one(df: pd.DataFrame, col: str, limit: Any) -> dict[str, Any]:
    limit = _number(limit, f"max_missing_share.{col}")
    if col not in df.columns:
        return _no_column("max_missing_share", col, limit)
    missing = int(df[col].isna().sum())
    share = missing / len(df) if len(df) else 0.0
    ok = share <= limit
    message = f"{col}: {share:.1%} missing ({missing} of {len(df)} rows); limit {limit:.1%}"
    return _result("max_missing_share", col, "pass" if ok else "fail", message, share, limit)


def _range(df: pd.DataFrame, col: str, bounds: Any) -> dict[str, Any]:
    if not isinstance(bounds, dict) or not ({"min", "max"} & set(bounds)):
        raise SpecError(f"ranges.{col} must be an object with 'min' and/or 'max'.", field="rules")
    lo = None if bounds.get("min") is None else _number(bounds["min"], f"ranges.{col}.min")
    hi = None if bounds.get("max") is None else _number(bounds["max"], f"ranges.{col}.max")
    expected = {"min": lo, "max": hi}
    if col not in df.columns:
        return _no_column("ranges", col, expected)
    s = df[col]
    if ptypes.is_bool_dtype(s.dtype) or not ptypes.is_numeric_dtype(s.dtype):
        return _result("ranges", col, "fail", f"{col}: column is not numeric ({s.dtype})",
                       str(s.dtype), expected)  # fmt: skip
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    values = values[~np.isnan(values)]
    outside = np.zeros(len(values), dtype=bool)
    if lo is not None:
        outside |= values < lo
    if hi is not None:
        outside |= values > hi
    bad = int(outside.sum())
    vmin, vmax = (json_value(values.min()), json_value(values.max())) if len(values) else (None, None)
    span = f"[{_fmt(lo, '-inf')}, {_fmt(hi, 'inf')}]"
    observed = {"outside": bad, "min": vmin, "max": vmax}
    if bad:
        message = f"{col}: {_count(bad, 'value')} outside {span} (min {_fmt(vmin)}, max {_fmt(vmax)})"
    else:
        message = f"{col}: all {len(values)} values within {span} (min {_fmt(vmin)}, max {_fmt(vmax)})"
    return _result("ranges", col, "fail" if bad else "pass", message, observed, expected)


def _allowed(df: pd.DataFrame, col: str, allowed: Any) -> dict[str, Any]:
    if not isinstance(allowed, list | tuple | set):
        raise SpecError(f"allowed_categories.{col} must be a list of values.", field="rules")
    expected = [json_value(v) for v in allowed]
    if col not in df.columns:
        return _no_column("allowed_categories", col, expected)
    s = df[col].dropna()
    unexpected = s[~s.isin(list(allowed))].value_counts()
    bad = int(unexpected.sum())
    examples = [{"value": json_value(v), "count": int(c)} for v, c in unexpected.iloc[:5].items()]
    observed = {"unexpected": bad, "examples": examples}
    if bad:
        shown = ", ".join(f"{e['value']!r} ({e['count']})" for e in examples)
        more = f" and {len(unexpected) - 5} more" if len(unexpected) > 5 else ""
        message = f"{col}: {_count(bad, 'value')} not in the allowed set: {shown}{more}"
    else:
        message = f"{col}: all {len(s)} values are in the allowed set of {len(expected)}"
    return _result("allowed_categories", col, "fail" if bad else "pass", message, observed, expected)


def _unique_key(df: pd.DataFrame, key: Any) -> dict[str, Any]:
    """The key columns must identify rows: no duplicate combinations and no missing parts."""
    cols = [key] if isinstance(key, str) else key
    if not isinstance(cols, list | tuple) or not cols or not all(isinstance(c, str) for c in cols):
        raise SpecError("unique_key must be a column name or a list of column names.", field="rules")
    cols = list(cols)
    label = ", ".join(cols)
    missing_cols = [c for c in cols if c not in df.columns]
    if missing_cols:
        return _no_column("unique_key", ", ".join(missing_cols), cols, label=label)
    dupes = int(df.duplicated(subset=cols).sum())
    nulls = int(df[cols].isna().any(axis=1).sum())
    observed = {"duplicates": dupes, "missing": nulls}
    problems = []
    if dupes:
        first = df.loc[df.duplicated(subset=cols), cols].iloc[0]
        example = ", ".join(f"{c}={json_value(first[c])!r}" for c in cols)
        problems.append(f"{_count(dupes, 'duplicate row')} (e.g. {example})")
    if nulls:
        problems.append(f"{_count(nulls, 'row')} with a missing key value")
    column = cols[0] if len(cols) == 1 else label
    if problems:
        return _result("unique_key", column, "fail", f"({label}): " + "; ".join(problems), observed, cols)
    return _result("unique_key", column, "pass", f"({label}): all {len(df)} rows have a unique key",
                   observed, cols)  # fmt: skip


# --------------------------------------------------------------------------- helpers


def _result(rule: str, column: str | None, status: str, message: str, observed: Any, expected: Any) -> dict:
    return {
        "rule": rule,
        "column": column,
        "status": status,
        "message": message,
        "observed": observed,
        "expected": expected,
    }


def _no_column(rule: str, col: str, expected: Any, *, label: str | None = None) -> dict[str, Any]:
    return _result(rule, label or col, "fail", f"{col}: column does not exist in the table", None, expected)


def _mapping(rules: dict[str, Any], key: str) -> dict[str, Any]:
    value = rules[key]
    if not isinstance(value, dict):
        raise SpecError(f"{key} must be an object keyed by column name.", field="rules")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise SpecError(f"{where} must be a number, got {value!r}.", field="rules")
    return value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fmt(value: Any, none: str = "n/a") -> str:
    if value is None:
        return none
    return f"{value:g}" if isinstance(value, float) else str(value)
