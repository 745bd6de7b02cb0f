"""Hourly sketches: statistics from merged sketches equal scipy / scikit-learn on the raw rows
where the grid makes them exact, stay within their stated bound elsewhere, merge like the rows
they summarise, and refuse malformed stored sketches with a clear MLError."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from apps.ml import sketch as S
from apps.ml.drift import build_reference, feature_drift
from apps.ml.errors import MLError
from apps.ml.metrics import classification_metrics, regression_metrics
from apps.ml.sketch import (
    sketch_empty,
    sketch_grid,
    sketch_merge,
    sketch_rows,
    sketch_validate,
    sketch_values,
)
from apps.ml.sketch_drift import sketch_chart, sketch_drift
from apps.ml.sketch_performance import (
    classification_sketch,
    performance_merge,
    performance_metrics,
    regression_sketch,
)

TOL = 1e-9
METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "chi2")


def _ref(values, kind="numeric") -> dict:
    return json.loads(json.dumps(build_reference(values, kind)))  # as read back from the database


def _hourly(grid, values, hours: int = 24) -> dict:
    """Sketch ``values`` as ``hours`` hourly sketches, each through JSON, then merge them."""
    parts = [json.loads(json.dumps(sketch_values(grid, part))) for part in np.array_split(values, hours)]
    return sketch_merge(grid, parts)


def _scipy_bins(ref: np.ndarray, cur: np.ndarray, cuts) -> tuple[np.ndarray, np.ndarray]:
    edges = np.r_[-np.inf, cuts, np.inf]
    return np.histogram(ref, edges)[0].astype(float), np.histogram(cur, edges)[0].astype(float)


def _assert_same_as_raw(ref: dict, cur: np.ndarray, sk: dict, grid, *, exact: bool) -> None:
    """Every method: the sketch's verdict against feature_drift on the raw rows."""
    for method in METHODS if ref["kind"] == "numeric" else ("psi", "jensenshannon", "chi2"):
        raw = feature_drift("f", ref, cur, method=method)
        got = sketch_drift("f", grid, sk, method=method)
        assert got.rows == raw.rows and got.status in ("ok", "drifted")
        bound = 0.0 if exact else got.error_bound
        assert abs(got.statistic - raw.statistic) <= bound + TOL * max(1.0, abs(raw.statistic)), method
        if raw.p_value is not None:
            assert abs(got.p_value - raw.p_value) <= (0.0 if exact else got.p_value_error_bound) + TOL, method
        if exact:
            assert got.error_bound == 0.0 and got.approximate == raw.approximate, method
        if "edges" in raw.current_hist or "__other__" not in got.current_hist["categories"]:
            assert got.current_hist["shares"] == pytest.approx(raw.current_hist["shares"], abs=1e-12)
            assert got.reference_hist == raw.reference_hist


# --------------------------------------------------------------------------- exact cases == scipy
def test_integer_feature_whose_values_are_reference_atoms_is_exact_for_every_statistic() -> None:
    rng = np.random.default_rng(1)
    r, c = rng.poisson(4.0, 50_000).astype(float), rng.poisson(4.3, 30_000).astype(float)
    ref = _ref(r)
    grid = sketch_grid(ref)
    sk = _hourly(grid, c)
    _assert_same_as_raw(ref, c, sk, grid, exact=True)
    ks = sketch_drift("f", grid, sk, method="ks")
    expected = stats.ks_2samp(r, c)
    assert abs(ks.statistic - expected.statistic) < TOL and abs(ks.p_value - expected.pvalue) < TOL
    w = stats.wasserstein_distance(r, c) / np.std(r)
    assert abs(sketch_drift("f", grid, sk, method="wasserstein").statistic - w) < TOL
    a, b = _scipy_bins(r, c, ref["psi_cuts"])
    assert abs(sketch_drift("f", grid, sk, method="jensenshannon").statistic - jensenshannon(a, b, base=2)) < TOL
    got = sketch_drift("f", grid, sk, method="chi2")
    exp = stats.chi2_contingency(np.vstack([a, b])[:, (a + b) > 0])
    assert got.statistic == pytest.approx(exp.statistic, rel=TOL) and abs(got.p_value - exp.pvalue) < TOL


def test_small_reference_makes_ks_exact_with_scipys_exact_p_value() -> None:
    """At most GRID_ALL_VALUES_MAX distinct reference values: each is a cell boundary."""
    rng = np.random.default_rng(2)
    r, c = rng.normal(0, 1, 800), rng.normal(0.15, 1, 3000)  # n <= 10,000: scipy's exact p-value
    ref = _ref(r)
    grid = sketch_grid(ref)
    got = sketch_drift("f", grid, _hourly(grid, c))
    expected = stats.ks_2samp(r, c)
    assert got.method == "ks" and got.error_bound == 0.0 and not got.approximate
    assert abs(got.statistic - expected.statistic) < TOL and abs(got.p_value - expected.pvalue) < TOL


def test_binned_statistics_and_charts_are_exact_on_a_histogram_reference() -> None:
    rng = np.random.default_rng(3)
    r, c = rng.lognormal(0, 1, 200_000), rng.lognormal(0.1, 1, 40_000)
    ref = _ref(r)
    assert not ref["exact"]
    grid = sketch_grid(ref)
    sk = _hourly(grid, c)
    for method in ("psi", "jensenshannon", "chi2"):
        raw, got = feature_drift("f", ref, c, method=method), sketch_drift("f", grid, sk, method=method)
        assert got.error_bound == 0.0 and abs(got.statistic - raw.statistic) <= TOL * max(1, raw.statistic)
    chart = sketch_chart(grid, sk)
    edges = np.asarray(ref["chart_edges"])
    assert chart["counts"] == np.histogram(c, np.r_[-np.inf, edges[1:-1], np.inf])[0].tolist()


def test_categorical_statistics_equal_scipy_with_unseen_labels_and_nulls() -> None:
    rng = np.random.default_rng(4)
    r = np.array([f"c{i}" for i in rng.choice(12, 3000)], dtype=object)
    c = np.r_[np.array([f"c{i}" for i in rng.choice(15, 2000)], dtype=object), [None, np.nan, "new"] * 3]
    ref = _ref(r, "categorical")
    grid = sketch_grid(ref)
    sk = _hourly(grid, c)
    _assert_same_as_raw(ref, c, sk, grid, exact=True)
    clean = pd.Series(c).dropna()
    rc, cc = pd.Series(r).value_counts(), clean.value_counts()
    cats = sorted(set(rc.index) | set(cc.index))
    a, b = rc.reindex(cats, fill_value=0).to_numpy(float), cc.reindex(cats, fill_value=0).to_numpy(float)
    assert abs(sketch_drift("f", grid, sk, method="jensenshannon").statistic - jensenshannon(a, b, base=2)) < TOL
    got, exp = sketch_drift("f", grid, sk, method="chi2"), stats.chi2_contingency(np.vstack([a, b]))
    assert got.statistic == pytest.approx(exp.statistic, rel=TOL) and abs(got.p_value - exp.pvalue) < TOL
    assert got.rows == len(clean) and sk["nulls"] == 6
    chart = sketch_chart(grid, sk)
    assert dict(zip(chart["categories"], chart["counts"], strict=True)) == cc.to_dict()


# --------------------------------------------------------------------------- approximate cases, within the bound
@pytest.mark.parametrize(
    "n_ref,n_cur,shift",
    [(5_000, 3_000, 0.05), (8_000, 20_000, 0.1), (200_000, 5_000, 0.0), (300_000, 60_000, 0.2)],
)
def test_continuous_feature_stays_within_its_stated_bound(n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    r, c = rng.normal(10, 2, n_ref), rng.normal(10 + shift, 2.2, n_cur)
    ref = _ref(r)
    grid = sketch_grid(ref)
    sk = _hourly(grid, c)
    _assert_same_as_raw(ref, c, sk, grid, exact=False)
    ks, w = sketch_drift("f", grid, sk, method="ks"), sketch_drift("f", grid, sk, method="wasserstein")
    assert ks.approximate and 0 < ks.error_bound <= 2e-3 and 0 < w.error_bound <= 5e-3
    # against scipy on the *full* reference: the sketch's bound plus the summary's own 1e-3 (DESIGN)
    expected = stats.ks_2samp(r, c)
    assert abs(ks.statistic - expected.statistic) <= ks.error_bound + 1e-3
    assert abs(ks.p_value - expected.pvalue) <= ks.p_value_error_bound + 1e-3


def test_ks_p_value_bound_contains_scipys_p_value_for_every_statistic_within_the_error() -> None:
    from apps.ml.sketch_drift import _ks_p_range

    rng = np.random.default_rng(5)
    for n1, n2 in [(7, 5), (40, 60), (300, 170), (2000, 900), (12_000, 3_000)]:
        x, y = rng.normal(0, 1, n1), rng.normal(0.2, 1, n2)
        expected = stats.ks_2samp(x, y)
        for err in (1e-4, 1e-2, 0.05):
            d = expected.statistic + rng.uniform(-err, err)
            p, bound = _ks_p_range(d, err, n1, n2)
            assert abs(p - expected.pvalue) <= bound + 1e-12


def test_bound_holds_when_every_value_sits_at_one_end_of_its_cell() -> None:
    """The worst case for 'linear inside a cell': all current mass just above a boundary."""
    rng = np.random.default_rng(6)
    r = rng.normal(0, 1, 6000)
    ref = _ref(r)
    grid = sketch_grid(ref)
    b = grid.bounds
    c = np.nextafter(b[rng.integers(0, b.size - 1, 4000)], np.inf)
    c = c[~np.isin(c, grid.points)]
    sk = sketch_values(grid, c)
    _assert_same_as_raw(ref, c, sk, grid, exact=False)


def test_values_outside_the_reference_range_are_exact_in_the_tails() -> None:
    rng = np.random.default_rng(7)
    r = rng.normal(0, 1, 50_000)
    c = np.r_[rng.normal(-20, 3, 500) - 10, rng.normal(30, 5, 700) + 10]
    ref = _ref(r)
    grid = sketch_grid(ref)
    sk = _hourly(grid, c)
    for method in ("ks", "wasserstein"):
        got = sketch_drift("f", grid, sk, method=method)
        assert got.error_bound == 0.0
    w = stats.wasserstein_distance(r, c) / np.std(r)
    assert sketch_drift("f", grid, sk, method="wasserstein").statistic == pytest.approx(w, rel=1e-4)
    assert sketch_drift("f", grid, sk, method="wasserstein").statistic == pytest.approx(
        feature_drift("f", ref, c, method="wasserstein").statistic, rel=TOL)
    assert sk["min"] == c.min() and sk["max"] == c.max()


def test_pooled_unseen_labels_keep_js_and_chi2_statistic_exact_and_bound_psi(monkeypatch) -> None:
    monkeypatch.setattr(S, "UNSEEN_LABELS_MAX", 5)
    rng = np.random.default_rng(8)
    r = np.array([f"c{i}" for i in rng.choice(6, 4000)], dtype=object)
    ref = _ref(r, "categorical")
    grid = sketch_grid(ref)
    for trial in range(12):
        ids = [f"id{i}" for i in rng.integers(0, 8 + 10 * trial, 300 + 40 * trial)]
        c = np.r_[np.array([f"c{i}" for i in rng.choice(6, 1500)], dtype=object), ids]
        sk = _hourly(grid, c, hours=1 + trial % 5)
        assert sk["other"] > 0 and len(sk["counts"]) <= 6 + 5
        _assert_same_as_raw(ref, c, sk, grid, exact=False)
        assert sketch_drift("f", grid, sk, method="jensenshannon").error_bound == 0.0
        assert sketch_drift("f", grid, sk, method="chi2").error_bound <= TOL
    monkeypatch.setattr(S, "LABEL_CHARS_MAX", 3)  # a long label is pooled, never kept
    sk = sketch_values(grid, ["c1"] * 40 + ["a-long-label"] * 9)
    assert sk["other"] == 9 and sk["other_labels"] == 1


# --------------------------------------------------------------------------- merging and JSON
def test_24_hourly_sketches_merged_equal_the_day_sketched_at_once() -> None:
    rng = np.random.default_rng(9)
    r = np.where(rng.random(100_000) < 0.2, 0.0, rng.gamma(2, 1, 100_000))
    c = np.r_[np.where(rng.random(48_000) < 0.25, 0.0, rng.gamma(2.1, 1, 48_000)), [np.nan, np.inf, None] * 5]
    grid = sketch_grid(_ref(r))
    day, merged = sketch_values(grid, c), _hourly(grid, c)
    for key in day:
        if key == "tail_gaps":
            assert merged[key] == pytest.approx(day[key], rel=1e-12)
        else:
            assert merged[key] == day[key], key
    cats = sketch_grid(_ref(["a", "b", "c"] * 50, "categorical"))
    labels = np.array(list("abcdx") * 100 + [None] * 7, dtype=object)
    assert _hourly(cats, labels) == sketch_values(cats, labels)


def test_merge_is_commutative_associative_and_empty_is_its_identity() -> None:
    rng = np.random.default_rng(10)
    grid = sketch_grid(_ref(rng.normal(0, 1, 30_000)))
    a, b, c = (sketch_values(grid, rng.normal(0.1 * i, 1, 500 + i)) for i in range(3))
    left = sketch_merge(grid, [sketch_merge(grid, [a, b]), c])
    right = sketch_merge(grid, [a, sketch_merge(grid, [b, c])])
    for key in left:
        assert left[key] == pytest.approx(right[key], rel=1e-12) if key == "tail_gaps" else left[key] == right[key]
    assert sketch_merge(grid, [c, b, a])["counts"] == left["counts"]
    assert sketch_merge(grid, [a, sketch_empty(grid)]) == a
    assert sketch_merge(grid, [])["rows"] == 0


def test_json_round_trip_gives_the_same_verdicts_and_strict_json() -> None:
    rng = np.random.default_rng(11)
    ref = _ref(rng.normal(0, 1, 40_000))
    grid = sketch_grid(ref)
    sk = sketch_values(grid, np.r_[rng.normal(0, 1, 3000), 1e308, -1e308, np.inf, np.nan])
    text = json.dumps(sk, allow_nan=False)  # huge values stay finite: jsonb takes it
    back = json.loads(text)
    assert back == sk
    for method in METHODS:
        assert sketch_drift("f", grid, back, method=method).to_dict() == sketch_drift(
            "f", grid, sk, method=method).to_dict()
        json.dumps(sketch_drift("f", grid, back, method=method).to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- statuses, nulls, rows
def test_statuses_missing_all_null_and_not_enough_data_as_for_raw_rows() -> None:
    ref = _ref(np.arange(100.0))
    grid = sketch_grid(ref)
    rows = [{"f": None}, {"g": 1}, {"f": "abc"}, {"f": float("inf")}] * 10
    sk = sketch_rows({"f": grid}, rows + ["not a mapping"])["f"]
    assert (sk["rows"], sk["absent"], sk["nulls"], sk["non_finite"]) == (41, 11, 20, 10)
    assert sketch_drift("f", grid, sk).status == "all_null" == feature_drift("f", ref, [None] * 30).status
    assert sketch_drift("f", grid, sketch_values(grid, [], absent=50)).status == "missing"
    assert sketch_drift("f", grid, sketch_empty(grid)).status == "missing"
    no_reference = sketch_grid(_ref([np.nan, None]))
    assert sketch_drift("f", no_reference, sketch_values(no_reference, np.arange(50.0))).status == "not_enough_data"
    few = sketch_drift("f", grid, sketch_values(grid, [1.0, None] * 20))
    assert (few.status, few.rows, few.drifted) == ("not_enough_data", 20, None)
    assert few.to_dict() == {**feature_drift("f", ref, [1.0, None] * 20).to_dict(), "error_bound": None,
                             "p_value_error_bound": None}


def test_raw_row_verdicts_keep_no_error_bound() -> None:
    ref = _ref(np.arange(500.0))
    verdict = feature_drift("f", ref, np.arange(0.0, 500.0, 2))
    assert verdict.error_bound is None and verdict.p_value_error_bound is None


def test_prediction_distribution_is_a_sketch_on_the_target_grid() -> None:
    rng = np.random.default_rng(12)
    target = _ref(rng.choice(["yes", "no"], 5000, p=[0.3, 0.7]), "categorical")
    grid = sketch_grid(target)
    predicted = rng.choice(["yes", "no"], 4000, p=[0.4, 0.6])
    raw = feature_drift("prediction", target, predicted)
    got = sketch_drift("prediction", grid, _hourly(grid, predicted))
    assert got.statistic == pytest.approx(raw.statistic, abs=TOL) and got.drifted == raw.drifted


# --------------------------------------------------------------------------- hostile stored sketches
def _cells(sketch: dict) -> int:
    return S.unpack_ints(sketch["counts"], "counts", 10**6).size


def _with_last(values: np.ndarray, last: int) -> np.ndarray:
    values[-1] = last
    return values


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda s: s.update(extra=1), "sketch"),
        (lambda s: s.pop("nulls"), "sketch"),
        (lambda s: s.update(grid="0" * 16), "grid"),
        (lambda s: s.update(version=2), "kind"),
        (lambda s: s.update(rows=S.COUNT_MAX + 1), "rows"),
        (lambda s: s.update(rows=True), "rows"),
        (lambda s: s.update(rows=s["rows"] + 1), "rows"),
        (lambda s: s.update(counts=[1, 2]), "counts"),
        (lambda s: s.update(counts="x1:AAAA"), "counts"),
        (lambda s: s.update(counts="u1:not base64!"), "counts"),
        (lambda s: s.update(counts="u2:AAAA"), "counts"),  # three bytes: not whole 2-byte integers
        (lambda s: s.update(counts="u8:" + "A" * 10**6), "counts"),  # longer than the grid allows
        (lambda s: s.update(counts=S.pack_ints(_with_last(np.ones(_cells(s), dtype=np.uint64), 2**64 - 1))),
         "counts"),
        (lambda s: s.update(counts=S.pack_ints(np.r_[0, np.ones(_cells(s) - 1)].astype(np.int64))), "counts"),
        (lambda s: s.update(counts=S.pack_ints(np.full(_cells(s), 2**53 - 1, dtype=np.int64))), "rows"),
        (lambda s: s.update(index=S.pack_ints(np.r_[10**6, np.ones(_cells(s) - 1)].astype(np.int64))), "index"),
        (lambda s: s.update(index=S.pack_ints(np.r_[0, np.zeros(_cells(s) - 1)].astype(np.int64))), "index"),
        (lambda s: s.update(index=S.pack_ints(np.ones(_cells(s) + 1, dtype=np.int64))), "index"),
        (lambda s: s.update(index={"a": 1}), "index"),
        (lambda s: s.update(tail_gaps=[float("nan"), 0.0]), "tail_gaps"),
        (lambda s: s.update(tail_gaps=[1.0]), "tail_gaps"),
        (lambda s: s.update(min=None), "min"),
        (lambda s: s.update(max=float("inf")), "max"),
    ],
)
def test_a_malformed_numeric_sketch_is_a_clear_error(change, field) -> None:
    grid = sketch_grid(_ref(np.arange(50.0)))
    sk = json.loads(json.dumps(sketch_values(grid, np.arange(-5.0, 60.0, 0.5))))
    change(sk)
    with pytest.raises(MLError) as err:
        sketch_validate(grid, sk)
    assert err.value.field == field
    with pytest.raises(MLError):
        sketch_drift("f", grid, sk)


def test_a_malformed_categorical_sketch_or_a_foreign_grid_is_a_clear_error(monkeypatch) -> None:
    grid = sketch_grid(_ref(["a", "b"] * 20, "categorical"))
    good = sketch_values(grid, ["a", "b", "z", None])
    for bad in ({**good, "counts": {"a": 0, "b": 1, "z": 1}}, {**good, "counts": ["a"]},
                {**good, "other": 1}, {**good, "other_labels": 1}, "not a sketch", None):
        with pytest.raises(MLError):
            sketch_validate(grid, bad)
    monkeypatch.setattr(S, "UNSEEN_LABELS_MAX", 0)
    with pytest.raises(MLError):
        sketch_validate(grid, good)  # more unseen labels than a sketch may hold
    numeric = sketch_grid(_ref(np.arange(10.0)))
    with pytest.raises(MLError):
        sketch_merge(numeric, [good])
    with pytest.raises(MLError):
        sketch_grid({"kind": "text"})
    with pytest.raises(MLError):
        sketch_grid({"kind": "numeric"})


def test_unhashable_and_dirty_values_are_counted_not_crashed_on() -> None:
    cats = sketch_grid(_ref(["a", "b"] * 20, "categorical"))
    sk = sketch_values(cats, ["a", ["x"], {"k": 1}, None])
    assert sk["counts"]["a"] == 1 and sk["nulls"] == 1 and sum(sk["counts"].values()) == 3
    nul = sketch_values(cats, ["a", "bad\x00label", "b"])
    assert nul["other"] == 1 and "\x00" not in json.dumps(nul)  # PostgreSQL's jsonb refuses NUL
    with pytest.raises(MLError):
        sketch_validate(cats, {**nul, "counts": {**nul["counts"], 7: 1}})
    over = classification_sketch(["x\x00"] * 3, ["a"] * 3, classes=["a", "b"])
    assert over["overflow"] == 3 and "\x00" not in json.dumps(over)
    num = sketch_grid(_ref(np.arange(10.0)))
    sk = sketch_values(num, [1, "2", {"k": 1}, [3], True, None, float("-inf")])
    finite = int(S.unpack_ints(sk["counts"], "counts", num.cells).sum())
    assert (sk["rows"], sk["nulls"], sk["non_finite"], finite) == (7, 3, 1, 3)


def test_plain_lists_as_logged_sketch_like_arrays_through_pandas() -> None:
    """The pandas-free path for JSON lists gives the sketch the general path gives."""
    rng = np.random.default_rng(15)
    num = sketch_grid(_ref(rng.integers(0, 20, 5000).astype(float)))
    cats = sketch_grid(_ref(np.array([f"c{i}" for i in rng.integers(0, 5, 500)], dtype=object), "categorical"))
    pool = [None, float("nan"), float("inf"), 3, 3.0, 7, 2.5, -1e300, 10**400, "c1", "c3", "zz", 1, 1.0]
    for _ in range(30):
        values = [pool[i] for i in rng.integers(0, len(pool), 40)]
        numbers = [v for v in values if not isinstance(v, str)]
        assert sketch_values(num, numbers) == sketch_values(num, pd.Series(numbers, dtype=object))
        assert sketch_values(cats, values) == sketch_values(cats, pd.Series(values, dtype=object))


def test_an_integer_beyond_float64_counts_as_non_finite_on_both_paths() -> None:
    ref = _ref(np.arange(100.0))
    window = [10**400, -(10**400)] + list(range(60))
    assert feature_drift("f", ref, window).rows == 60  # was an OverflowError from pandas
    sk = sketch_values(sketch_grid(ref), window)
    assert (sk["non_finite"], sk["rows"]) == (2, 62)


def test_merged_rows_beyond_the_count_limit_are_refused() -> None:
    grid = sketch_grid(_ref(["a", "b"] * 20, "categorical"))
    big = {**sketch_values(grid, []), "rows": S.COUNT_MAX, "nulls": S.COUNT_MAX}
    sketch_validate(grid, big)
    with pytest.raises(MLError) as err:
        sketch_merge(grid, [big, big])
    assert err.value.field == "rows"


# --------------------------------------------------------------------------- size
def test_an_hour_of_10000_continuous_values_on_20_features_stays_small(capsys) -> None:
    rng = np.random.default_rng(13)
    total = 0
    for j in range(20):
        r = rng.normal(0, 1, 100_000) if j % 2 else rng.lognormal(0, 1, 5_000)
        grid = sketch_grid(_ref(r))
        total += len(json.dumps(sketch_values(grid, rng.normal(0.1, 1.1, 10_000) if j % 2 else
                                              rng.lognormal(0, 1, 10_000))))
    with capsys.disabled():
        print(f"\n20 feature-hours of 10,000 continuous values: {total / 1000:.1f} kB JSON")
    assert total < 200_000


# --------------------------------------------------------------------------- performance
def _classifier_rows(rng, n: int, k: int):
    classes = [f"k{i}" for i in range(k)]
    y = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), y] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    names = np.array(classes, dtype=object)
    return classes, names[y], names[proba.argmax(1)], proba


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_from_merged_sketches_equal_scikit_learn(k: int) -> None:
    rng = np.random.default_rng(k)
    classes, y, pred, proba = _classifier_rows(rng, 12_000, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        expected = classification_metrics(y, pred, proba, classes)
    parts = [json.loads(json.dumps(classification_sketch(y[i::24], pred[i::24], classes=classes,
                                                         proba=proba[i::24]))) for i in range(24)]
    got = performance_metrics(performance_merge(parts))
    assert got["labelled_rows"] == 12_000
    for name in ("accuracy", "precision", "recall", "f1", "log_loss"):
        assert abs(got["metrics"][name] - expected[name]) < TOL, name
    assert 0 < got["error_bounds"]["roc_auc"] < 2e-3
    assert abs(got["metrics"]["roc_auc"] - expected["roc_auc"]) <= got["error_bounds"]["roc_auc"]
    whole = performance_metrics(classification_sketch(y, pred, classes=classes, proba=proba))
    assert whole["metrics"] == pytest.approx(got["metrics"], rel=1e-12)


def test_extra_labels_missing_probabilities_and_overflow() -> None:
    y, pred = ["a", "b", "zz", "a", "b"] * 6, ["a", "a", "b", "a", "b"] * 6
    got = performance_metrics(classification_sketch(y, pred, classes=["a", "b"]))
    expected = classification_metrics(np.array(y), np.array(pred), None, ["a", "b", "zz"])
    assert got["metrics"] == pytest.approx(expected, abs=TOL)  # zz counts as a class, no probabilities
    proba = np.tile([[0.6, 0.4]], (30, 1))
    with_p = performance_metrics(classification_sketch(y, pred, classes=["a", "b"], proba=proba))
    assert with_p["metrics"]["log_loss"] is None  # a label outside classes: scikit-learn refuses
    ids = [f"id{i}" for i in range(300)]
    over = performance_metrics(classification_sketch(ids, ["a"] * 300, classes=["a", "b"]))
    assert over["metrics"]["accuracy"] == 0.0 and over["metrics"]["f1"] is None
    assert over["error_bounds"]["accuracy"] == pytest.approx(200 / 300)


def test_regression_metrics_from_merged_sketches_equal_scikit_learn() -> None:
    rng = np.random.default_rng(14)
    y = rng.normal(1000, 3, 20_000)
    p = y + rng.normal(0.2, 1.0, 20_000)
    expected = regression_metrics(y, p)
    merged = performance_merge([json.loads(json.dumps(regression_sketch(y[i::24], p[i::24]))) for i in range(24)])
    got = performance_metrics(merged)
    for name in expected:
        assert got["metrics"][name] == pytest.approx(expected[name], rel=TOL), name
    dirty = regression_sketch([1.0, np.nan, 1e200, 2.0, 3.0], [1.5, 1.0, 1.0, np.inf, 2.0])
    assert (dirty["rows"], dirty["dropped"], dirty["n"]) == (5, 3, 2)
    json.dumps(dirty, allow_nan=False)


def test_a_malformed_performance_sketch_is_a_clear_error() -> None:
    good = classification_sketch(["a", "b"], ["a", "a"], classes=["a", "b"], proba=[[0.9, 0.1], [0.2, 0.8]])
    reg = regression_sketch([1.0, 2.0], [1.0, 2.5])
    for bad in ({**good, "rows": 3}, {**good, "junk": 1}, {**good, "confusion": {"a": {"a": -1}}},
                {**good, "log_loss_sum": float("nan")}, {**good, "auc": []},
                {**good, "auc": [{"pos": {"index": "u2:iBM=", "counts": "u1:AQ=="}, "neg": good["auc"][0]["neg"]}] * 2},
                {**reg, "n": 5}, {**reg, "y_m2": -1.0}, {**reg, "kind": "other"}):
        with pytest.raises(MLError):
            performance_metrics(bad)
    with pytest.raises(MLError):
        performance_merge([good, {**good, "classes": ["a", "c"]}])
    with pytest.raises(MLError):
        performance_merge([good, reg])
    with pytest.raises(MLError):
        classification_sketch(["a"], ["a"], classes=["a", "b"], proba=[[0.5, 0.5, 0.0]])
