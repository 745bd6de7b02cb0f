"""Schema inference by role, and profiles checked against pandas/numpy computed independently."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from apps.ml.io import read_table
from apps.ml.profile import HISTOGRAM_BINS, infer_schema, profile_table

DRIFT_AVAILABLE = importlib.util.find_spec("apps.ml.drift") is not None
RNG = np.random.default_rng(42)
N = 400


def roles(df: pd.DataFrame) -> dict[str, str]:
    return {c["name"]: c["role"] for c in infer_schema(df)}


def role_of(values, name: str = "col") -> str:
    return roles(pd.DataFrame({name: values}))[name]


@pytest.fixture
def frame() -> pd.DataFrame:
    x = RNG.normal(50, 10, N)
    x[[3, 17, 99]] = np.nan
    cat = RNG.choice(["red", "green", "blue", "teal"], N, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    cat[[5, 6]] = None
    return pd.DataFrame(
        {
            "x": x,
            "k": RNG.integers(0, 7, N),
            "cat": pd.Series(cat, dtype="str"),
            "flag": RNG.random(N) > 0.3,
            "when": pd.Series(pd.date_range("2024-01-01", periods=N, freq="h")),
        }
    )


# --------------------------------------------------------------------------- infer_schema


def test_schema_entries_carry_name_dtype_role_and_nullable(frame):
    schema = infer_schema(frame)
    assert [c["name"] for c in schema] == list(frame.columns)
    assert schema[0] == {"name": "x", "dtype": "float64", "role": "numeric", "nullable": True}
    assert schema[1]["nullable"] is False and schema[1]["dtype"] == "int64"


def test_numbers_are_numeric():
    assert role_of(RNG.normal(size=N)) == "numeric"
    assert role_of(RNG.integers(0, 1000, N)) == "numeric"


def test_bool_dtype_is_boolean():
    assert role_of(RNG.random(N) > 0.5) == "boolean"


@pytest.mark.parametrize(
    "values",
    [
        [0, 1, 1, 0, None],
        [0.0, 1.0, 1.0],
        ["true", "false", "True"],
        ["yes", "no", "YES", None],
        ["Y", "N", "N"],
    ],
)
def test_a_two_value_boolean_set_is_boolean(values):
    assert role_of(values) == "boolean"


def test_an_arbitrary_two_value_set_stays_categorical():
    assert role_of(["M", "F", "F", "M"]) == "categorical"
    assert role_of([1, 2, 2, 1]) == "numeric"


def test_datetime_dtype_is_datetime():
    assert role_of(pd.date_range("2024-01-01", periods=10)) == "datetime"


@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y"])
def test_strings_that_parse_as_dates_are_datetime(fmt):
    days = pd.date_range("2023-01-01", periods=N, freq="D")
    assert role_of([d.strftime(fmt) for d in days]) == "datetime"


def test_mostly_non_date_strings_are_not_datetime():
    values = [f"2024-01-{d:02d}" for d in range(1, 29)] + ["n/a-ish"] * 10
    assert role_of(values) != "datetime"


def test_a_monotonic_unique_integer_column_is_an_id():
    assert role_of(np.arange(1, N + 1), name="row_number") == "id"


def test_a_shuffled_unique_integer_column_named_like_an_id_is_an_id():
    for name in ("id", "user_id", "customerId", "OrderID"):
        assert role_of(RNG.permutation(N), name=name) == "id"


def test_a_shuffled_unique_integer_column_not_named_like_an_id_is_numeric():
    assert role_of(RNG.permutation(N), name="paid") == "numeric"


def test_fifty_or_fewer_unique_integers_are_not_an_id():
    assert role_of(np.arange(50), name="id") == "numeric"


def test_a_unique_string_column_is_an_id():
    assert role_of([f"SKU-{i:06d}" for i in range(N)]) == "id"


def test_low_cardinality_strings_are_categorical(frame):
    assert roles(frame)["cat"] == "categorical"


def test_object_dtype_strings_are_handled_like_str_dtype():
    values = pd.Series(RNG.choice(["a", "b", "c"], N), dtype=object)
    assert role_of(values) == "categorical"


def test_long_free_text_is_text():
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"])
    texts = [" ".join(RNG.choice(words, 15)) for _ in range(N)]
    texts[0] = texts[1]  # not all unique, so not an id
    assert role_of(texts) == "text"


def test_many_distinct_short_strings_stay_categorical():
    values = [f"v{i % 300}" for i in range(N * 2)]
    assert role_of(values) == "categorical"


def test_roles_of_a_csv_read_from_disk(tmp_path):
    lines = ["id,amount,colour,active,signup"]
    lines += [
        f"{i},{i * 1.5},{'rgb'[i % 3]},{'yes' if i % 2 else 'no'},2024-03-{i % 28 + 1:02d}" for i in range(60)
    ]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    assert roles(read_table(str(path), "csv")) == {
        "id": "id",
        "amount": "numeric",
        "colour": "categorical",
        "active": "boolean",
        "signup": "datetime",
    }


# --------------------------------------------------------------------------- profile_table


def test_numeric_profile_matches_pandas_and_numpy(frame):
    prof = profile_table(frame, infer_schema(frame))["columns"]["x"]
    s = frame["x"]
    finite = s.dropna().to_numpy()
    assert prof["count"] == s.count() == N - 3
    assert prof["missing"] == 3 and prof["missing_share"] == pytest.approx(3 / N)
    assert prof["distinct"] == s.nunique()
    assert prof["mean"] == pytest.approx(s.mean(), rel=1e-12)
    assert prof["std"] == pytest.approx(s.std(), rel=1e-12)
    assert prof["min"] == s.min() and prof["max"] == s.max()
    expected_q = np.quantile(finite, [0.05, 0.25, 0.5, 0.75, 0.95])
    got_q = [prof[k] for k in ("q05", "q25", "q50", "q75", "q95")]
    assert got_q == pytest.approx(expected_q.tolist(), rel=1e-12)
    counts, edges = np.histogram(finite, bins=30)
    assert prof["histogram"]["counts"] == counts.tolist()
    assert prof["histogram"]["edges"] == pytest.approx(edges.tolist())
    assert len(prof["histogram"]["counts"]) == HISTOGRAM_BINS


def test_infinite_values_are_counted_and_kept_out_of_the_statistics():
    s = pd.Series([1.0, 2.0, 3.0, np.inf, -np.inf, np.nan])
    prof = profile_table(pd.DataFrame({"v": s}), [{"name": "v", "role": "numeric"}])["columns"]["v"]
    assert prof["infinite"] == 2 and prof["missing"] == 1 and prof["count"] == 5
    assert prof["mean"] == 2.0 and prof["min"] == 1.0 and prof["max"] == 3.0
    assert sum(prof["histogram"]["counts"]) == 3


def test_an_all_missing_numeric_column_has_empty_statistics():
    df = pd.DataFrame({"v": [np.nan] * 5})
    prof = profile_table(df, [{"name": "v", "role": "numeric"}])["columns"]["v"]
    assert prof["count"] == 0 and prof["missing"] == 5 and prof["missing_share"] == 1.0
    assert prof["mean"] is None and prof["q50"] is None and prof["histogram"] == {"edges": [], "counts": []}


def test_a_single_value_has_no_standard_deviation():
    prof = profile_table(pd.DataFrame({"v": [4.0]}), [{"name": "v", "role": "numeric"}])["columns"]["v"]
    assert prof["mean"] == 4.0 and prof["std"] is None


def test_categorical_profile_matches_value_counts(frame):
    prof = profile_table(frame, infer_schema(frame))["columns"]["cat"]
    vc = frame["cat"].value_counts()
    assert prof["count"] == N - 2 and prof["missing"] == 2
    assert prof["distinct"] == frame["cat"].nunique() == 4
    assert [(t["value"], t["count"]) for t in prof["top"]] == list(vc.items())
    assert [t["share"] for t in prof["top"]] == pytest.approx((vc / vc.sum()).tolist())
    assert prof["other_count"] == 0


def test_only_the_top_twenty_categories_are_listed_and_the_rest_summed():
    values = pd.Series([f"c{i:02d}" for i in range(30) for _ in range(i + 1)])
    df = pd.DataFrame({"c": values})
    prof = profile_table(df, [{"name": "c", "role": "categorical"}])["columns"]["c"]
    vc = values.value_counts()
    assert len(prof["top"]) == 20 and prof["distinct"] == 30
    assert [t["value"] for t in prof["top"]] == vc.index[:20].tolist()
    assert prof["other_count"] == int(vc.iloc[20:].sum())


def test_boolean_profile_counts_each_value(frame):
    prof = profile_table(frame, infer_schema(frame))["columns"]["flag"]
    vc = frame["flag"].value_counts()
    assert {t["value"]: t["count"] for t in prof["top"]} == {bool(k): int(v) for k, v in vc.items()}


def test_datetime_profile_gives_iso_min_and_max(frame):
    prof = profile_table(frame, infer_schema(frame))["columns"]["when"]
    assert prof["min"] == frame["when"].min().isoformat() == "2024-01-01T00:00:00"
    assert prof["max"] == frame["when"].max().isoformat()
    assert prof["distinct"] == N


def test_date_strings_are_profiled_as_dates():
    df = pd.DataFrame({"d": ["03/01/2024", "25/12/2023", None, "14/02/2024"]})
    prof = profile_table(df, [{"name": "d", "role": "datetime"}])["columns"]["d"]
    assert prof["min"] == "2023-12-25T00:00:00" and prof["max"] == "2024-02-14T00:00:00"
    assert prof["missing"] == 1 and prof["unparsed"] == 0


def test_the_profile_is_strict_json(frame):
    frame.loc[0, "x"] = np.inf
    profile = profile_table(frame, infer_schema(frame))
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile
    assert profile["rows"] == N and set(profile["columns"]) == set(frame.columns)


def test_progress_is_reported_for_every_column_and_ends_at_100(frame):
    calls: list[tuple[int, str]] = []
    profile_table(frame, infer_schema(frame), progress=lambda pct, msg: calls.append((pct, msg)))
    assert len(calls) >= len(frame.columns)
    percents = [p for p, _ in calls]
    assert all(0 <= p <= 100 for p in percents) and percents == sorted(percents)
    assert percents[-1] == 100
    for name in frame.columns:
        assert any(name in msg for _, msg in calls)


@pytest.mark.skipif(not DRIFT_AVAILABLE, reason="apps.ml.drift not written yet")
def test_numeric_and_categorical_columns_carry_a_drift_reference(frame):
    cols = profile_table(frame, infer_schema(frame))["columns"]
    for name in ("x", "k", "cat", "flag"):
        assert "reference" in cols[name], name
    assert "reference" not in cols["when"]
