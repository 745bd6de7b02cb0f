"""Drift statistics: equal to scipy where the stored summary is exact, close where it is not,
symmetric where the statistic is, and verdicts/statuses as documented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from apps.ml import drift, drift_summary
from apps.ml.drift import (
    FeatureDrift,
    build_reference,
    chi2,
    compare_references,
    dataset_drift,
    feature_drift,
    jensenshannon_distance,
    ks,
    psi,
    reference_statistic,
    wasserstein_normed,
)
from apps.ml.errors import MLError

TOL = 1e-9
SIZES = [(5, 7), (30, 40), (300, 200), (1000, 5000), (2000, 2000), (12_000, 15_000), (20_000, 3_000)]


def _sample(rng: np.random.Generator, n: int, *, ties: bool, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(shift, 1.0, n)
    return np.round(x, 1) if ties else x


def _roundtrip(ref: dict) -> dict:
    return json.loads(json.dumps(ref))


def _scipy_psi(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> float:
    """Independent PSI: np.histogram over the interior reference quantiles with open ends."""
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1))[1:-1])
    edges = np.r_[-np.inf, cuts, np.inf]
    a = np.histogram(ref, edges)[0] / ref.size
    b = np.histogram(cur, edges)[0] / cur.size
    a, b = np.where(a == 0, 1e-4, a), np.where(b == 0, 1e-4, b)
    return float(np.sum((a - b) * np.log(a / b)))


def _scipy_counts(ref_cats, cur_cats) -> tuple[np.ndarray, np.ndarray]:
    rc, cc = pd.Series(ref_cats).value_counts(), pd.Series(cur_cats).value_counts()
    cats = sorted(set(rc.index) | set(cc.index))
    return rc.reindex(cats, fill_value=0).to_numpy(float), cc.reindex(cats, fill_value=0).to_numpy(float)


def _cats(
    rng: np.random.Generator, n: int, k: int, p: np.ndarray | None = None, prefix: str = "c"
) -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in rng.choice(k, size=n, p=p)], dtype=object)


# --------------------------------------------------------------------------- raw statistics == scipy
@pytest.mark.parametrize("n1,n2", SIZES)
@pytest.mark.parametrize("ties", [False, True])
def test_ks_and_wasserstein_equal_scipy(n1: int, n2: int, ties: bool) -> None:
    rng = np.random.default_rng(n1 * 7 + n2 + ties)
    r, c = _sample(rng, n1, ties=ties), _sample(rng, n2, ties=ties, shift=0.1)
    expected = stats.ks_2samp(r, c)
    stat, p = ks(r, c)
    assert abs(stat - expected.statistic) < TOL
    assert abs(p - expected.pvalue) < TOL
    w = stats.wasserstein_distance(r, c) / max(np.std(r), 0.001)
    assert abs(wasserstein_normed(r, c) - w) < TOL


def test_ks_small_exact_pvalues_across_many_seeds() -> None:
    """Small n exercises scipy's exact p-value branch, including n1 == n2 and large D."""
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n1, n2 = rng.integers(1, 60, size=2)
        r, c = rng.integers(0, 5, n1).astype(float), rng.integers(0, 6, n2).astype(float)
        expected = stats.ks_2samp(r, c)
        stat, p = ks(r, c)
        assert abs(stat - expected.statistic) < TOL and abs(p - expected.pvalue) < TOL


@pytest.mark.parametrize("n1,n2", [(50, 40), (1000, 300), (20_000, 5_000)])
def test_psi_matches_formula(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1)
    r, c = rng.normal(0, 1, n1), rng.normal(0.3, 1.2, n2)
    assert abs(psi(r, c) - _scipy_psi(r, c)) < TOL
    assert abs(psi(r, c, bins=20) - _scipy_psi(r, c, 20)) < TOL
    # ties: binary feature keeps two populated bins
    rb = rng.permutation(np.r_[np.ones(3 * n1 // 10), np.zeros(n1 - 3 * n1 // 10)])
    cb = rng.permutation(np.r_[np.ones(6 * n2 // 10), np.zeros(n2 - 6 * n2 // 10)])
    assert abs(psi(rb, cb) - _scipy_psi(rb, cb)) < TOL
    assert psi(rb, cb) > 0.1


def test_psi_hand_computed() -> None:
    a, b = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    expected = (a - b) @ np.log(a / b)
    assert abs(drift.psi_from_counts(np.array([2, 2]), np.array([1, 3])) - expected) < 1e-15
    # empty bin -> epsilon 1e-4 (documented)
    e = (0.5 - 1e-4) * np.log(0.5 / 1e-4) + (0.5 - 1.0) * np.log(0.5 / 1.0)
    assert abs(drift.psi_from_counts(np.array([1, 1]), np.array([0, 4])) - e) < 1e-12


@pytest.mark.parametrize("n1,n2,k", [(20, 30, 3), (500, 400, 8), (5000, 3000, 20), (100, 100, 2)])
def test_jensenshannon_and_chi2_equal_scipy(n1: int, n2: int, k: int) -> None:
    rng = np.random.default_rng(k)
    r = _cats(rng, n1, k)
    c = np.r_[_cats(rng, n2, k + 1)[: n2 - 3], ["only_current"] * 3]  # unseen categories count too
    a, b = _scipy_counts(r, c)
    assert abs(jensenshannon_distance(r, c) - jensenshannon(a, b, base=2)) < TOL
    res = stats.chi2_contingency(np.vstack([a, b]))
    stat, p = chi2(r, c)
    assert abs(stat - res.statistic) < TOL * max(1.0, res.statistic) and abs(p - res.pvalue) < TOL


def test_chi2_two_categories_uses_scipy_default_yates() -> None:
    r, c = ["a"] * 30 + ["b"] * 20, ["a"] * 15 + ["b"] * 25
    res = stats.chi2_contingency(np.array([[30, 20], [15, 25]]))  # correction=True, dof 1
    assert chi2(r, c) == pytest.approx((res.statistic, res.pvalue), abs=TOL)
    assert chi2(["a"] * 5, ["a"] * 9) == (0.0, 1.0)  # dof 0


def test_jensenshannon_identical_is_zero_not_nan() -> None:
    r = ["a"] * 3 + ["b"] * 7
    assert jensenshannon_distance(r, r * 3) == 0.0
    assert not np.isnan(drift.js_from_counts(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]) * 1.0000001))


# --------------------------------------------------------------------------- summary == raw where exact
@pytest.mark.parametrize("n1,n2", [(40, 60), (800, 300), (5000, 12_000), (20_000, 4_000)])
def test_numeric_summary_equals_raw(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1 + 1)
    r, c = rng.gamma(2.0, 1.0, n1), rng.gamma(2.2, 1.0, n2)
    ref = _roundtrip(build_reference(r, "numeric"))
    assert ref["exact"] and ref["n"] == n1
    st = reference_statistic(ref, c, "ks")
    assert st.statistic == pytest.approx(ks(r, c)[0], abs=TOL)
    assert st.p_value == pytest.approx(stats.ks_2samp(r, c).pvalue, abs=TOL)
    assert not st.approximate
    assert reference_statistic(ref, c, "wasserstein").statistic == pytest.approx(
        wasserstein_normed(r, c), abs=TOL
    )
    assert reference_statistic(ref, c, "psi").statistic == pytest.approx(psi(r, c), abs=TOL)
    # numeric js / chi2 run on the PSI bins
    cuts = np.asarray(ref["psi_cuts"])
    edges = np.r_[-np.inf, cuts, np.inf]
    a, b = np.histogram(r, edges)[0], np.histogram(c, edges)[0]
    keep = (a + b) > 0
    assert reference_statistic(ref, c, "jensenshannon").statistic == pytest.approx(
        jensenshannon(a, b, base=2), abs=TOL
    )
    exp = stats.chi2_contingency(np.vstack([a[keep], b[keep]]))
    got = reference_statistic(ref, c, "chi2")
    assert got.statistic == pytest.approx(exp.statistic, rel=TOL) and got.p_value == pytest.approx(
        exp.pvalue, abs=TOL
    )


def test_many_ties_on_large_reference_stay_exact() -> None:
    """1M values but few distinct ones: stored as values + counts, still exact."""
    rng = np.random.default_rng(3)
    r, c = rng.poisson(4.0, 1_000_000).astype(float), rng.poisson(4.1, 20_000).astype(float)
    ref = _roundtrip(build_reference(r, "numeric"))
    assert ref["exact"] and len(ref["values"]) < 30
    st = reference_statistic(ref, c, "ks")
    expected = stats.ks_2samp(r, c)
    assert abs(st.statistic - expected.statistic) < TOL and abs(st.p_value - expected.pvalue) < TOL
    w = stats.wasserstein_distance(r, c) / np.std(r)
    assert abs(reference_statistic(ref, c, "wasserstein").statistic - w) < TOL


def test_categorical_summary_equals_raw() -> None:
    rng = np.random.default_rng(11)
    r = _cats(rng, 3000, 12)
    c = np.r_[_cats(rng, 1000, 14), [None, np.nan]]
    ref = _roundtrip(build_reference(r, "categorical"))
    assert ref["exact"] and ref["n"] == 3000 and sum(ref["counts"]) == 3000
    clean = c[pd.notna(c)]
    assert reference_statistic(ref, c, "jensenshannon").statistic == pytest.approx(
        jensenshannon_distance(r, clean), abs=TOL
    )
    got = reference_statistic(ref, c, "chi2")
    assert (got.statistic, got.p_value) == pytest.approx(chi2(r, clean), abs=TOL)
    a, b = _scipy_counts(r, clean)
    assert reference_statistic(ref, c, "psi").statistic == pytest.approx(drift.psi_from_counts(a, b), abs=TOL)


# --------------------------------------------------------------------------- histogram path (approximate)
@pytest.fixture(scope="module")
def big_reference() -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(2024)
    r = rng.normal(10.0, 2.0, 1_000_000)
    return r, _roundtrip(build_reference(r, "numeric"))


def test_histogram_path_within_1e3_of_scipy(big_reference) -> None:
    r, ref = big_reference
    assert not ref["exact"] and len(ref["hist_counts"]) <= drift_summary.HIST_BINS
    assert len(json.dumps(ref)) < 400_000
    rng = np.random.default_rng(5)
    for shift, n2 in [(0.0, 5000), (0.02, 5000), (0.2, 20_000), (1.0, 100_000)]:
        c = rng.normal(10.0 + shift, 2.0, n2)
        expected = stats.ks_2samp(r, c)
        st = reference_statistic(ref, c, "ks")
        assert st.approximate
        assert abs(st.statistic - expected.statistic) < 1e-4
        assert abs(st.p_value - expected.pvalue) < 1e-3
        w = stats.wasserstein_distance(r, c) / np.std(r)
        assert abs(reference_statistic(ref, c, "wasserstein").statistic - w) < 1e-4
        # PSI bins are exact counts even on the histogram path
        assert not reference_statistic(ref, c, "psi").approximate
        assert abs(reference_statistic(ref, c, "psi").statistic - psi(r, c)) < TOL


def test_histogram_path_with_an_atom_and_a_heavy_tail() -> None:
    rng = np.random.default_rng(8)
    r = np.where(rng.random(1_000_000) < 0.3, 0.0, rng.lognormal(0.0, 1.0, 1_000_000))
    ref = _roundtrip(build_reference(r, "numeric"))
    assert not ref["exact"] and 0.0 in ref["values"]  # the spike at 0 is an exact atom
    c = np.where(rng.random(8000) < 0.35, 0.0, rng.lognormal(0.05, 1.0, 8000))
    expected = stats.ks_2samp(r, c)
    st = reference_statistic(ref, c, "ks")
    assert abs(st.statistic - expected.statistic) < 1e-4 and abs(st.p_value - expected.pvalue) < 1e-3
    w = stats.wasserstein_distance(r, c) / np.std(r)
    assert abs(reference_statistic(ref, c, "wasserstein").statistic - w) < 1e-4


# --------------------------------------------------------------------------- symmetry
def test_symmetric_statistics_on_raw_values() -> None:
    rng = np.random.default_rng(21)
    a, b = rng.normal(0, 1, 700), rng.normal(0.2, 1.5, 1300)
    assert ks(a, b) == pytest.approx(ks(b, a), abs=1e-12)
    # the Wasserstein *distance* is symmetric; the normalised value divides by the reference std
    assert wasserstein_normed(a, b) * np.std(a) == pytest.approx(
        wasserstein_normed(b, a) * np.std(b), abs=1e-12
    )
    ca, cb = _cats(rng, 500, 6), _cats(rng, 800, 7)
    assert jensenshannon_distance(ca, cb) == pytest.approx(jensenshannon_distance(cb, ca), abs=1e-12)
    assert chi2(ca, cb) == pytest.approx(chi2(cb, ca), abs=1e-12)
    x, y = np.array([10.0, 0, 30, 60]), np.array([20.0, 5, 25, 0])
    assert drift.psi_from_counts(x, y) == pytest.approx(drift.psi_from_counts(y, x), abs=1e-12)


def test_symmetric_statistics_from_summaries() -> None:
    """Swapping which side is the stored summary gives the same KS/JS/chi2 (no Evidently-962-style
    asymmetry), both for a window against a summary and for two summaries."""
    rng = np.random.default_rng(22)
    a, b = rng.normal(0, 1, 900), rng.normal(0.1, 1, 600)
    ra, rb = build_reference(a, "numeric"), build_reference(b, "numeric")
    ab, ba = reference_statistic(ra, b, "ks"), reference_statistic(rb, a, "ks")
    assert ab.statistic == pytest.approx(ba.statistic, abs=1e-12) and ab.p_value == pytest.approx(
        ba.p_value, abs=1e-12
    )
    fa, fb = compare_references("x", ra, rb, method="ks"), compare_references("x", rb, ra, method="ks")
    assert fa.statistic == pytest.approx(fb.statistic, abs=1e-12)
    wa = compare_references("x", ra, rb, method="wasserstein").statistic * np.std(a)
    wb = compare_references("x", rb, ra, method="wasserstein").statistic * np.std(b)
    assert wa == pytest.approx(wb, abs=1e-12)
    ca, cb = _cats(rng, 2000, 5), _cats(rng, 1500, 6)
    rca, rcb = build_reference(ca, "categorical"), build_reference(cb, "categorical")
    for method in ("jensenshannon", "chi2"):
        x, y = reference_statistic(rca, cb, method), reference_statistic(rcb, ca, method)
        assert x.statistic == pytest.approx(y.statistic, abs=1e-12)


def test_symmetry_holds_for_two_histogram_summaries() -> None:
    rng = np.random.default_rng(23)
    ra = build_reference(rng.normal(0, 1, 300_000), "numeric")
    rb = build_reference(rng.normal(0.05, 1, 250_000), "numeric")
    assert not ra["exact"] and not rb["exact"]
    x, y = compare_references("x", ra, rb, method="ks"), compare_references("x", rb, ra, method="ks")
    assert x.approximate and x.statistic == pytest.approx(y.statistic, abs=1e-12)


# --------------------------------------------------------------------------- verdicts
def test_drift_detected_on_shift_not_on_same_distribution_ks_path() -> None:
    rng = np.random.default_rng(31)
    ref = build_reference(rng.normal(0, 1, 800), "numeric")
    same = feature_drift("f", ref, rng.normal(0, 1, 500))
    shifted = feature_drift("f", ref, rng.normal(0.5, 1, 500))
    assert same.method == shifted.method == "ks" and same.threshold == 0.05
    assert same.status == "ok" and same.drifted is False and same.p_value >= 0.05
    assert shifted.status == "drifted" and shifted.drifted is True and shifted.p_value < 0.05
    assert not shifted.approximate


def test_drift_detected_on_shift_not_on_same_distribution_wasserstein_path(big_reference) -> None:
    _, ref = big_reference
    rng = np.random.default_rng(32)
    same = feature_drift("f", ref, rng.normal(10.0, 2.0, 20_000))
    shifted = feature_drift("f", ref, rng.normal(11.0, 2.0, 20_000))  # +0.5 sd
    assert same.method == "wasserstein" and same.drifted is False and same.statistic < 0.1
    assert shifted.drifted is True and shifted.statistic == pytest.approx(0.5, abs=0.03)
    assert shifted.approximate
    assert shifted.reference_hist["edges"] == shifted.current_hist["edges"]
    assert sum(shifted.current_hist["shares"]) == pytest.approx(1.0)


@pytest.mark.parametrize("n_ref,method", [(800, "chi2"), (50_000, "jensenshannon")])
def test_categorical_drift_on_changed_frequency(n_ref: int, method: str) -> None:
    rng = np.random.default_rng(33)
    p = np.array([0.4, 0.3, 0.2, 0.1])
    ref = build_reference(_cats(rng, n_ref, 4, p), "categorical")
    same = feature_drift("c", ref, _cats(rng, 2000, 4, p))
    changed = feature_drift("c", ref, _cats(rng, 2000, 4, np.array([0.1, 0.2, 0.3, 0.4])))
    assert same.method == changed.method == method
    assert same.drifted is False and changed.drifted is True
    assert changed.reference_hist["categories"] == changed.current_hist["categories"]


def test_statuses_missing_all_null_not_enough_data() -> None:
    ref = build_reference(np.arange(100.0), "numeric")
    missing = feature_drift("f", ref, None)
    assert (missing.status, missing.drifted, missing.rows) == ("missing", None, 0)
    for nulls in ([None] * 50, [np.nan] * 50, pd.Series([np.nan] * 40), [np.inf, np.nan]):
        r = feature_drift("f", ref, nulls)
        assert (r.status, r.drifted, r.statistic) == ("all_null", None, None)
    few = feature_drift("f", ref, [1.0, None] * 20)
    assert (few.status, few.drifted, few.rows) == ("not_enough_data", None, 20)
    assert feature_drift("f", ref, [], min_rows=1).status == "not_enough_data"
    enough = feature_drift("f", ref, [1.0, None] * 20, min_rows=20)
    assert enough.status in ("ok", "drifted") and enough.rows == 20
    cref = build_reference(["a", "b"] * 10, "categorical")
    assert feature_drift("c", cref, [None, np.nan, pd.NA]).status == "all_null"
    assert feature_drift("c", cref, ["a"] * 5).status == "not_enough_data"


def test_configurable_method_and_threshold() -> None:
    rng = np.random.default_rng(34)
    ref = build_reference(rng.normal(0, 1, 500), "numeric")
    cur = rng.normal(0.3, 1, 500)
    r = feature_drift("f", ref, cur, method="psi", threshold=10.0)
    assert (r.method, r.threshold, r.drifted, r.p_value) == ("psi", 10.0, False, None)
    assert feature_drift("f", ref, cur, method="wasserstein", threshold=0.01).drifted is True
    with pytest.raises(MLError):
        feature_drift("f", ref, cur, method="nope")
    cref = build_reference(["a", "b"] * 50, "categorical")
    with pytest.raises(MLError):
        feature_drift("c", cref, ["a"] * 50, method="ks")
    with pytest.raises(MLError):
        build_reference([1, 2], "text")


def test_dataset_drift_share() -> None:
    def fd(name: str, drifted: bool | None) -> FeatureDrift:
        status = {True: "drifted", False: "ok", None: "missing"}[drifted]
        return FeatureDrift(name, "numeric", "ks", None, None, 0.05, drifted, 0, status)

    feats = [fd("a", True), fd("b", False), fd("c", None), fd("d", True), fd("e", False)]
    out = dataset_drift(feats)
    assert out == {"dataset_drift": True, "drift_share": 0.5, "drifted": ["a", "d"], "evaluated": 4}
    assert dataset_drift(feats, share=0.6)["dataset_drift"] is False
    assert dataset_drift([fd("a", None)]) == {
        "dataset_drift": None,
        "drift_share": 0.0,
        "drifted": [],
        "evaluated": 0,
    }


# --------------------------------------------------------------------------- JSON, labels, compare
def test_build_reference_json_round_trip() -> None:
    rng = np.random.default_rng(41)
    cur = rng.normal(0.2, 1, 3000)
    for values in (
        rng.normal(0, 1, 5000),
        rng.normal(0, 1, 60_000),
        np.r_[rng.normal(0, 1, 100), np.nan, np.inf],
    ):
        ref = build_reference(values, "numeric")
        back = json.loads(json.dumps(ref))
        assert back == ref
        for method in ("ks", "wasserstein", "psi"):
            a = feature_drift("f", ref, cur, method=method).to_dict()
            b = feature_drift("f", back, cur, method=method).to_dict()
            assert a == b
            json.dumps(a)
    cref = build_reference(pd.Series(["x", "y", None, "x"] * 30), "categorical")
    assert json.loads(json.dumps(cref)) == cref and cref["n"] == 90
    assert build_reference(np.array([np.nan]), "numeric")["n"] == 0


def test_category_labels_int_vs_float() -> None:
    """A column read as int in training and as float (because of NaN) in production is the same."""
    ref = build_reference(np.array([1, 2, 3] * 20), "categorical")
    cur = pd.Series([1.0, 2.0, 3.0, np.nan] * 20)
    r = feature_drift("c", ref, cur, method="chi2")
    assert r.statistic == pytest.approx(0.0) and r.rows == 60
    assert set(r.current_hist["categories"]) == {"1", "2", "3"}


def test_compare_references_exact_equals_raw_and_approximate_flag(big_reference) -> None:
    rng = np.random.default_rng(51)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.1, 1.1, 4000)
    ra, rb = build_reference(a, "numeric"), build_reference(b, "numeric")
    k = compare_references("f", ra, rb)
    assert k.method == "wasserstein" and not k.approximate and k.rows == 4000
    assert k.statistic == pytest.approx(wasserstein_normed(a, b), abs=TOL)
    ks_res = compare_references("f", ra, rb, method="ks")
    assert (ks_res.statistic, ks_res.p_value) == pytest.approx(tuple(stats.ks_2samp(a, b))[:2], abs=TOL)
    assert compare_references("f", ra, rb, method="psi").statistic == pytest.approx(psi(a, b), abs=TOL)
    big, big_ref = big_reference
    small = build_reference(big[:5000], "numeric")
    approx = compare_references("f", big_ref, small, method="ks")
    assert approx.approximate and approx.drifted is False
    assert abs(approx.statistic - stats.ks_2samp(big, big[:5000]).statistic) < 1e-4
    back = compare_references("f", small, big_ref, method="psi")
    assert back.approximate and back.statistic < 0.01
    with pytest.raises(MLError):
        compare_references("f", ra, build_reference(["a"], "categorical"))


def test_truncated_categories_are_flagged_approximate(monkeypatch) -> None:
    monkeypatch.setattr(drift_summary, "CATEGORY_MAX", 3)
    ref = build_reference(["a"] * 50 + ["b"] * 40 + ["c"] * 30 + ["d"] * 20 + ["e"] * 10, "categorical")
    assert not ref["exact"] and ref["other"] == 30 and ref["categories"] == ["a", "b", "c"]
    r = feature_drift("c", ref, ["a"] * 50 + ["b"] * 40 + ["c"] * 30 + ["d"] * 20 + ["e"] * 10)
    assert r.approximate and r.statistic == pytest.approx(0.0, abs=1e-12)
    assert "__other__" in r.current_hist["categories"]
