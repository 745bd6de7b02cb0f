"""Schema diff and validation rules: each rule passing, failing, and naming a missing column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from apps.ml.errors import SpecError
from apps.ml.profile import infer_schema
from apps.ml.validate import schema_diff, validate_table


def col(name: str, role: str) -> dict:
    return {"name": name, "dtype": "float64", "role": role, "nullable": False}


@pytest.fixture
def people() -> pd.DataFrame:
    ages = np.arange(20, 45, dtype=float)
    ages[[0, 1]] = np.nan
    return pd.DataFrame(
        {
            "id": np.arange(25),
            "age": ages,
            "plan": ["free", "pro"] * 12 + ["team"],
        }
    )


def run(df: pd.DataFrame, **kwargs) -> dict:
    report = validate_table(df, infer_schema(df), **kwargs)
    json.dumps(report, allow_nan=False)  # stored as JSON: must be strict
    return report


def only(report: dict, rule: str) -> dict:
    found = [r for r in report["results"] if r["rule"] == rule]
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- schema_diff


def test_schema_diff_lists_added_removed_and_retyped_columns():
    before = [col("a", "numeric"), col("b", "categorical"), col("c", "numeric")]
    after = [col("a", "numeric"), col("b", "text"), col("d", "boolean")]
    assert schema_diff(before, after) == {
        "added": ["d"],
        "removed": ["c"],
        "retyped": [{"name": "b", "from": "categorical", "to": "text"}],
    }


def test_schema_diff_without_a_previous_schema_is_empty():
    assert schema_diff(None, [col("a", "numeric")]) == {"added": [], "removed": [], "retyped": []}


def test_an_unchanged_schema_gives_one_schema_pass(people):
    report = run(people, previous_schema=infer_schema(people))
    assert report["status"] == "pass"
    assert only(report, "schema")["status"] == "pass"


def test_a_removed_column_fails(people):
    previous = [*infer_schema(people), col("income", "numeric")]
    report = run(people, previous_schema=previous)
    result = only(report, "schema")
    assert result["status"] == "fail" and result["column"] == "income" and "removed" in result["message"]
    assert report["status"] == "fail"


def test_a_retyped_column_warns(people):
    previous = [dict(c, role="categorical") if c["name"] == "age" else c for c in infer_schema(people)]
    report = run(people, previous_schema=previous)
    result = only(report, "schema")
    assert result["status"] == "warn" and result["column"] == "age"
    assert "from categorical to numeric" in result["message"]
    assert report["status"] == "warn"


def test_an_added_column_warns(people):
    previous = [c for c in infer_schema(people) if c["name"] != "plan"]
    report = run(people, previous_schema=previous)
    result = only(report, "schema")
    assert result["status"] == "warn" and result["column"] == "plan" and "added" in result["message"]


def test_without_rules_or_previous_schema_it_passes_with_no_results(people):
    assert run(people) == {"status": "pass", "results": []}


# --------------------------------------------------------------------------- rules


def test_min_rows_passes_when_there_are_enough_rows(people):
    result = only(run(people, rules={"min_rows": 25}), "min_rows")
    assert result["status"] == "pass" and result["observed"] == 25


def test_min_rows_fails_when_there_are_too_few_rows(people):
    report = run(people, rules={"min_rows": 100})
    result = only(report, "min_rows")
    assert result["status"] == "fail" and report["status"] == "fail"
    assert result["message"] == "25 rows; at least 100 required"
    assert (result["observed"], result["expected"]) == (25, 100)


def test_max_missing_share_passes_under_the_default_limit(people):
    report = run(people, rules={"max_missing_share": {"*": 0.2}})
    assert [r["column"] for r in report["results"]] == ["id", "age", "plan"]
    assert report["status"] == "pass"


def test_max_missing_share_fails_a_column_over_its_own_limit(people):
    report = run(people, rules={"max_missing_share": {"*": 0.2, "age": 0.0}})
    age = next(r for r in report["results"] if r["column"] == "age")
    assert age["status"] == "fail"
    assert age["message"] == "age: 8.0% missing (2 of 25 rows); limit 0.0%"
    assert age["observed"] == pytest.approx(0.08) and age["expected"] == 0.0
    assert len(report["results"]) == 3  # the override replaces, not adds to, the default


def test_max_missing_share_on_a_missing_column_fails(people):
    result = only(run(people, rules={"max_missing_share": {"income": 0.1}}), "max_missing_share")
    assert result["status"] == "fail" and "income: column does not exist" in result["message"]


def test_ranges_pass_when_all_values_are_inside(people):
    result = only(run(people, rules={"ranges": {"age": {"min": 0, "max": 120}}}), "ranges")
    assert result["status"] == "pass"
    assert result["message"] == "age: all 23 values within [0, 120] (min 22, max 44)"


def test_ranges_fail_naming_how_many_values_are_outside(people):
    people.loc[[2, 3], "age"] = [-4, 130]
    people.loc[4, "age"] = 121
    result = only(run(people, rules={"ranges": {"age": {"min": 0, "max": 120}}}), "ranges")
    assert result["status"] == "fail"
    assert result["message"] == "age: 3 values outside [0, 120] (min -4, max 130)"
    assert result["observed"] == {"outside": 3, "min": -4.0, "max": 130.0}
    assert result["expected"] == {"min": 0, "max": 120}


def test_a_range_with_one_bound_checks_only_that_bound(people):
    result = only(run(people, rules={"ranges": {"age": {"max": 30}}}), "ranges")
    assert result["status"] == "fail" and "outside [-inf, 30]" in result["message"]


def test_ranges_on_a_text_column_fail(people):
    result = only(run(people, rules={"ranges": {"plan": {"min": 0}}}), "ranges")
    assert result["status"] == "fail" and "not numeric" in result["message"]


def test_ranges_on_a_missing_column_fail(people):
    result = only(run(people, rules={"ranges": {"height": {"min": 0}}}), "ranges")
    assert result["status"] == "fail" and result["message"] == "height: column does not exist in the table"


def test_allowed_categories_pass_when_every_value_is_allowed(people):
    result = only(
        run(people, rules={"allowed_categories": {"plan": ["free", "pro", "team"]}}), "allowed_categories"
    )
    assert result["status"] == "pass"


def test_allowed_categories_fail_listing_unexpected_values(people):
    result = only(run(people, rules={"allowed_categories": {"plan": ["free", "pro"]}}), "allowed_categories")
    assert result["status"] == "fail"
    assert result["message"] == "plan: 1 value not in the allowed set: 'team' (1)"
    assert result["observed"] == {"unexpected": 1, "examples": [{"value": "team", "count": 1}]}


def test_allowed_categories_on_a_missing_column_fail(people):
    result = only(run(people, rules={"allowed_categories": {"tier": ["a"]}}), "allowed_categories")
    assert result["status"] == "fail" and "tier: column does not exist" in result["message"]


def test_unique_key_passes_for_a_unique_column(people):
    result = only(run(people, rules={"unique_key": ["id"]}), "unique_key")
    assert result["status"] == "pass" and result["column"] == "id"


def test_unique_key_fails_on_duplicates(people):
    people.loc[5, "id"] = 4
    result = only(run(people, rules={"unique_key": ["id"]}), "unique_key")
    assert result["status"] == "fail"
    assert "1 duplicate row (e.g." in result["message"] and "id=4" in result["message"]
    assert result["observed"] == {"duplicates": 1, "missing": 0}


def test_unique_key_fails_on_missing_key_values(people):
    result = only(run(people, rules={"unique_key": ["age"]}), "unique_key")
    assert result["status"] == "fail" and "2 rows with a missing key value" in result["message"]


def test_a_composite_unique_key_checks_the_combination():
    df = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    assert only(run(df, rules={"unique_key": ["a", "b"]}), "unique_key")["status"] == "pass"
    assert only(run(df, rules={"unique_key": ["a"]}), "unique_key")["status"] == "fail"


def test_unique_key_on_a_missing_column_fails(people):
    result = only(run(people, rules={"unique_key": ["id", "email"]}), "unique_key")
    assert result["status"] == "fail" and "email: column does not exist" in result["message"]


def test_the_overall_status_is_the_worst_result(people):
    previous = [dict(c, role="text") if c["name"] == "plan" else c for c in infer_schema(people)]
    report = run(people, previous_schema=previous, rules={"min_rows": 10})
    assert {r["status"] for r in report["results"]} == {"warn", "pass"}
    assert report["status"] == "warn"
    report = run(people, previous_schema=previous, rules={"min_rows": 1000})
    assert report["status"] == "fail"


def test_an_unknown_rule_is_a_spec_error(people):
    with pytest.raises(SpecError) as info:
        validate_table(people, infer_schema(people), rules={"max_nulls": 3})
    assert "max_nulls" in info.value.message and info.value.field == "rules"


def test_a_non_numeric_limit_is_a_spec_error(people):
    with pytest.raises(SpecError):
        validate_table(people, infer_schema(people), rules={"min_rows": "many"})
