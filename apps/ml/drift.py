"""Data drift: compare a production window (or another dataset version) with a stored
reference summary.

Why this shape: the reference is summarised once per dataset version
(:func:`build_reference`, see :mod:`apps.ml.drift_summary` for the JSON shape), so a check
costs O(window rows): the window is sorted or binned against stored edges, the reference
is never re-read nor re-sorted.

Statistics (all equal to scipy on the same inputs where the summary is exact):

* ``ks``: two-sample Kolmogorov-Smirnov statistic and p-value, as ``scipy.stats.ks_2samp``
  with ``method="auto"``: when both sizes are <= 10,000 the p-value is scipy's *exact* one
  (obtained from ``ks_2samp`` on two 0/1 samples with the same sizes and the same D, which
  is all the exact method depends on); otherwise the asymptotic
  ``scipy.stats.kstwo.sf(D, round(n1*n2/(n1+n2)))`` that ks_2samp uses. Drifted when
  ``p < threshold``.
* ``wasserstein``: ``scipy.stats.wasserstein_distance`` divided by the reference standard
  deviation (``np.std``, ddof=0, floored at 0.001), as Evidently does. The unnormalised
  distance is symmetric; the normalised one is not (it divides by the *reference* std).
* ``psi``: ``sum((a - b) * ln(a / b))`` over PSI_BINS quantile bins of the reference
  (open outer bins), ``a``/``b`` the reference/current shares, a share of exactly 0 replaced
  by ``PSI_EPS = 1e-4`` (Evidently's value, no renormalisation). For categorical features
  the bins are the union of categories. Symmetric in (a, b) for fixed bins.
* ``jensenshannon``: ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` (so in [0, 1]),
  p and q the counts over the *union* of categories (a category unseen in the reference
  counts with 0 there). A tiny negative divergence from rounding is clamped to 0 where
  scipy would return NaN.
* ``chi2``: ``scipy.stats.chi2_contingency`` with its defaults (Yates' correction applied
  by scipy only when dof == 1, i.e. two categories) on the 2 x K table of reference counts
  and current counts over the union of categories; drifted when ``p < threshold``.
  For numeric features the PSI bins are the categories (empty bins dropped).

Accuracy on a histogram summary (reference with > 20,000 distinct values): Wasserstein
and the KS statistic stay within ~2e-5 of scipy on the full reference (tested < 1e-4); the
KS p-value inherits the statistic's error multiplied by up to ~1.7*sqrt(n1*n2/(n1+n2)), so
it is within 1e-3 for windows up to ~10k rows and within ~5e-3 at 100k rows, where the
p-value itself is that sensitive to D. Such results carry ``approximate=True``.

Default method like Evidently: numeric with reference n <= 1000 → ks, else wasserstein;
categorical with n <= 1000 → chi2, else jensenshannon.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from .drift_stats import PSI_EPS, chi2_from_counts, js_from_counts, ks_pvalue, psi_from_counts
from .drift_summary import (
    OTHER,
    PSI_BINS,
    Dist,
    bin_counts,
    build_reference,
    category_counts,
    compare_cdfs,
    numeric_values,
    quantile_cuts,
)
from .errors import MLError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "PSI_EPS",
    "FeatureDrift",
    "Statistic",
    "build_reference",
    "chi2",
    "chi2_from_counts",
    "compare_references",
    "dataset_drift",
    "default_method",
    "feature_drift",
    "feature_drift_from_distribution",
    "jensenshannon_distance",
    "js_from_counts",
    "ks",
    "ks_pvalue",
    "psi",
    "psi_from_counts",
    "reference_statistic",
    "wasserstein_normed",
]

METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "chi2")
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
P_VALUE_METHODS = frozenset({"ks", "chi2"})
CATEGORICAL_METHODS = frozenset({"psi", "jensenshannon", "chi2"})
SMALL_REFERENCE = 1000
STD_FLOOR = 0.001
CHART_CATEGORIES = 30


# --------------------------------------------------------------------------- plain functions on raw arrays
def _finite(values: Any, what: str) -> np.ndarray:
    """Sorted finite values; MLError when there are none."""
    x, _ = numeric_values(values)
    if x.size == 0:
        raise MLError(f"No finite {what} values.", field=what)
    return np.sort(x)


def ks(ref: Any, cur: Any) -> tuple[float, float]:
    """Two-sample KS (statistic, p-value) on raw values; equals ``scipy.stats.ks_2samp``."""
    r, c = _finite(ref, "reference"), _finite(cur, "current")
    cmp = compare_cdfs(Dist.from_sorted(r), Dist.from_sorted(c))
    return cmp.ks, ks_pvalue(cmp.ks, r.size, c.size, cmp.counts)


def wasserstein_normed(ref: Any, cur: Any) -> float:
    """``wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)`` on raw values."""
    r, c = _finite(ref, "reference"), _finite(cur, "current")
    w = compare_cdfs(Dist.from_sorted(r), Dist.from_sorted(c)).wasserstein
    return w / max(float(np.std(r)), STD_FLOOR)


def psi(ref: Any, cur: Any, bins: int = PSI_BINS) -> float:
    """PSI over ``bins`` quantile bins of the reference (interior quantiles, open outer bins)."""
    r, c = _finite(ref, "reference"), _finite(cur, "current")
    cuts = quantile_cuts(r, bins)
    return psi_from_counts(bin_counts(r, cuts), bin_counts(c, cuts))


def _union_counts(ref: dict[str, int], cur: dict[str, int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts over the union of categories: reference order first, then new ones sorted."""
    cats = list(ref) + sorted(k for k in cur if k not in ref)
    return (
        cats,
        np.array([ref.get(k, 0) for k in cats], dtype=np.float64),
        np.array([cur.get(k, 0) for k in cats], dtype=np.float64),
    )


def _category_vectors(ref_cats: Any, cur_cats: Any) -> tuple[np.ndarray, np.ndarray]:
    rc, _ = category_counts(ref_cats)
    cc, _ = category_counts(cur_cats)
    if not rc or not cc:
        raise MLError("No non-null categories to compare.", field="reference" if not rc else "current")
    _, a, b = _union_counts(rc, cc)
    return a, b


def jensenshannon_distance(ref_cats: Any, cur_cats: Any) -> float:
    """Jensen-Shannon distance (base 2) of category frequencies over the union of categories."""
    return js_from_counts(*_category_vectors(ref_cats, cur_cats))


def chi2(ref_cats: Any, cur_cats: Any) -> tuple[float, float]:
    """``chi2_contingency`` (statistic, p-value) of the reference-vs-current count table."""
    return chi2_from_counts(*_category_vectors(ref_cats, cur_cats))


# --------------------------------------------------------------------------- result types
class Statistic(NamedTuple):
    """One statistic computed against a stored summary."""

    statistic: float
    p_value: float | None
    approximate: bool


@dataclass
class FeatureDrift:
    """Verdict for one feature. ``rows`` counts the usable (non-null, finite) current values.

    ``reference_hist``/``current_hist`` feed the charts: numeric ``{"edges", "shares"}``
    (same edges for both, ~20 quantile bins of the reference, outer bins open);
    categorical ``{"categories", "shares"}`` (same categories for both, at most 30, the rest
    summed under ``"__other__"``).

    ``error_bound`` / ``p_value_error_bound``: when the window was judged from a summary of
    it (hourly sketches, :mod:`apps.ml.sketch`), the largest possible difference between
    ``statistic`` / ``p_value`` and what the raw window rows would give against the same
    reference summary (0.0 when exact); None when the raw rows were judged or there is no
    statistic.
    """

    name: str
    kind: str
    method: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool | None
    rows: int
    status: str
    approximate: bool = False
    reference_hist: dict[str, list] | None = None
    current_hist: dict[str, list] | None = None
    error_bound: float | None = None
    p_value_error_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


def default_method(kind: str, n: int) -> str:
    """Evidently-like default: a test (p-value) for small references, a distance otherwise."""
    if kind == "numeric":
        return "ks" if n <= SMALL_REFERENCE else "wasserstein"
    return "chi2" if n <= SMALL_REFERENCE else "jensenshannon"


def _resolve(kind: str, n: int, method: str | None, threshold: float | None) -> tuple[str, float]:
    if kind not in ("numeric", "categorical"):
        raise MLError(f"Unknown feature kind {kind!r}.", field="kind")
    method = method or default_method(kind, n)
    if method not in METHODS:
        raise MLError(
            f"Unknown drift method {method!r}; expected one of {', '.join(METHODS)}.", field="method"
        )
    if kind == "categorical" and method not in CATEGORICAL_METHODS:
        raise MLError(f"Method {method!r} needs a numeric feature.", field="method")
    thr = DEFAULT_THRESHOLDS[method] if threshold is None else float(threshold)
    return method, thr


def _is_drifted(method: str, stat: float, p: float | None, threshold: float) -> bool:
    return bool(p < threshold) if method in P_VALUE_METHODS else bool(stat >= threshold)


# --------------------------------------------------------------------------- summary-based statistics
class _Current:
    """The compared side: a raw window (numeric values kept sorted: one O(w log w) sort per
    check serves KS, Wasserstein and every bin count), another stored summary, or a
    distribution built elsewhere (``dist``, e.g. from merged hourly sketches; ``exact``
    says whether it is the window's exact distribution)."""

    def __init__(
        self,
        kind: str,
        *,
        values: np.ndarray | None = None,
        counts: dict[str, int] | None = None,
        summary: dict[str, Any] | None = None,
        dist: Dist | None = None,
        exact: bool = True,
    ):
        self.kind, self.values, self.counts, self.summary = kind, values, counts, summary
        self._dist, self._exact = dist, exact
        if summary is not None:
            self.n = int(summary["n"])
        elif values is not None:
            self.n = int(values.size)
        elif dist is not None:
            self.n = int(dist.n)
        else:
            self.n = int(sum((counts or {}).values()))

    def dist(self) -> Dist:
        if self._dist is not None:
            return self._dist
        return Dist.from_summary(self.summary) if self.summary is not None else Dist.from_sorted(self.values)

    @property
    def exact(self) -> bool:
        return self._exact and (self.summary is None or bool(self.summary["exact"]))

    def numeric_bins(self, cuts: np.ndarray) -> np.ndarray:
        """Counts in the bins ``[c_{k-1}, c_k)``; for a summary, via its (maybe interpolated) CDF."""
        if self.values is not None:
            return bin_counts(self.values, cuts)
        below = self.dist().cdf(cuts, left=True)
        return np.diff(np.r_[0.0, below, float(self.n)])

    def category_map(self) -> dict[str, int]:
        if self.counts is not None:
            return self.counts
        out = dict(zip(self.summary["categories"], self.summary["counts"], strict=True))
        if self.summary["other"]:
            out[OTHER] = out.get(OTHER, 0) + int(self.summary["other"])
        return out


def _pool(counts: dict[str, int], keep: set[str]) -> dict[str, int]:
    """Sum every label not in ``keep`` under OTHER."""
    out: dict[str, int] = {}
    for k, v in counts.items():
        key = k if k in keep else OTHER
        out[key] = out.get(key, 0) + v
    return out


def _categorical_vectors(
    ref: dict[str, Any], cur: _Current
) -> tuple[list[str], np.ndarray, np.ndarray, bool]:
    """Union count vectors. A label missing from a *truncated* side's stored list may be
    hidden in that side's "other", so on the opposite side it is pooled under OTHER too."""
    rmap = dict(zip(ref["categories"], ref["counts"], strict=True))
    if ref["other"]:
        rmap[OTHER] = rmap.get(OTHER, 0) + int(ref["other"])
    cmap = cur.category_map()
    r_keys, c_keys = set(rmap), set(cmap)
    if not ref["exact"]:
        cmap = _pool(cmap, r_keys)
    if not cur.exact:
        rmap = _pool(rmap, c_keys)
    cats, a, b = _union_counts(rmap, cmap)
    return cats, a, b, not ref["exact"] or not cur.exact


def _statistic(ref: dict[str, Any], cur: _Current, method: str) -> Statistic:
    """Dispatch: KS/Wasserstein on the two CDFs, the binned methods on count vectors
    (categories, or the reference's stored PSI bins for a numeric feature)."""
    if ref["kind"] == "categorical":
        _, a, b, approx = _categorical_vectors(ref, cur)
    elif method in ("ks", "wasserstein"):
        p = Dist.from_summary(ref)
        cmp = compare_cdfs(p, cur.dist())
        exact = p.exact and cur.exact
        if method == "ks":
            pv = ks_pvalue(cmp.ks, p.n, cur.n, cmp.counts if exact else None)
            return Statistic(cmp.ks, pv, not exact)
        return Statistic(cmp.wasserstein / max(float(ref["std"]), STD_FLOOR), None, not exact)
    else:
        cuts = np.asarray(ref["psi_cuts"], dtype=np.float64)
        a, b, approx = np.asarray(ref["psi_counts"], dtype=np.float64), cur.numeric_bins(cuts), not cur.exact
    if method == "psi":
        return Statistic(psi_from_counts(a, b), None, approx)
    if method == "jensenshannon":
        return Statistic(js_from_counts(a, b), None, approx)
    stat, pv = chi2_from_counts(a, b)
    return Statistic(stat, pv, approx)


def reference_statistic(reference: dict[str, Any], current_values: Any, method: str) -> Statistic:
    """One statistic of a raw window against a stored summary (what feature_drift uses).

    Raises MLError when either side has no usable value.
    """
    _resolve(reference["kind"], int(reference["n"]), method, None)
    cur = _window(reference["kind"], current_values)[0]
    if cur.n == 0 or int(reference["n"]) == 0:
        raise MLError("No usable values to compare.", field="current" if cur.n == 0 else "reference")
    return _statistic(reference, cur, method)


def _window(kind: str, values: Any) -> tuple[_Current, int]:
    if kind == "numeric":
        x, total = numeric_values(values)
        return _Current(kind, values=np.sort(x)), total
    counts, total = category_counts(values)
    return _Current(kind, counts=counts), total


# --------------------------------------------------------------------------- charts
def _shares(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [float(c) / total if total else 0.0 for c in counts]


def _hists(ref: dict[str, Any], cur: _Current | None) -> tuple[dict | None, dict | None]:
    if int(ref["n"]) == 0:
        return None, None
    if ref["kind"] == "numeric":
        edges = list(ref["chart_edges"])
        rh = {"edges": edges, "shares": _shares(np.asarray(ref["chart_counts"]))}
        if cur is None or cur.n == 0:
            return rh, None
        counts = cur.numeric_bins(np.asarray(edges[1:-1], dtype=np.float64))
        return rh, {"edges": edges, "shares": _shares(counts)}
    empty = _Current("categorical", counts={})
    cats, a, b, _ = _categorical_vectors(ref, cur if cur is not None and cur.n else empty)
    if len(cats) > CHART_CATEGORIES:
        order = np.argsort(-(a / max(a.sum(), 1) + b / max(b.sum(), 1)), kind="stable")
        keep, rest = order[: CHART_CATEGORIES - 1], order[CHART_CATEGORIES - 1 :]
        cats = [cats[i] for i in keep] + [OTHER]
        a, b = np.r_[a[keep], a[rest].sum()], np.r_[b[keep], b[rest].sum()]
    rh = {"categories": cats, "shares": _shares(a)}
    return rh, ({"categories": cats, "shares": _shares(b)} if cur is not None and cur.n else None)


# --------------------------------------------------------------------------- verdicts
def _verdict(
    name: str,
    ref: dict[str, Any],
    cur: _Current | None,
    total: int,
    *,
    method: str | None,
    threshold: float | None,
    min_rows: int,
) -> FeatureDrift:
    kind, n_ref = ref["kind"], int(ref["n"])
    method, thr = _resolve(kind, n_ref, method, threshold)
    base = dict(
        name=name, kind=kind, method=method, threshold=thr, statistic=None, p_value=None, drifted=None
    )
    if cur is None:
        rh, _ = _hists(ref, None)
        return FeatureDrift(**base, rows=0, status="missing", reference_hist=rh)
    rh, ch = _hists(ref, cur)
    if total > 0 and cur.n == 0:
        return FeatureDrift(**base, rows=0, status="all_null", reference_hist=rh)
    if cur.n < min_rows or n_ref == 0:
        return FeatureDrift(**base, rows=cur.n, status="not_enough_data", reference_hist=rh, current_hist=ch)
    st = _statistic(ref, cur, method)
    drifted = _is_drifted(method, st.statistic, st.p_value, thr)
    base.update(statistic=st.statistic, p_value=st.p_value, drifted=drifted)
    return FeatureDrift(
        **base,
        rows=cur.n,
        status="drifted" if drifted else "ok",
        approximate=st.approximate,
        reference_hist=rh,
        current_hist=ch,
    )


def feature_drift(
    name: str,
    reference: dict[str, Any],
    current_values: Any,
    *,
    method: str | None = None,
    threshold: float | None = None,
    min_rows: int = 30,
) -> FeatureDrift:
    """Drift of one feature: a production window against the stored reference summary.

    ``current_values`` may hold None/NaN (ignored); None means the column is absent
    ("missing"), a window of only nulls gives "all_null", fewer than ``min_rows`` usable
    values "not_enough_data" (no verdict: ``drifted`` is None).
    """
    if current_values is None:
        return _verdict(name, reference, None, 0, method=method, threshold=threshold, min_rows=min_rows)
    cur, total = _window(reference["kind"], current_values)
    return _verdict(name, reference, cur, total, method=method, threshold=threshold, min_rows=min_rows)


def feature_drift_from_distribution(
    name: str,
    reference: dict[str, Any],
    *,
    rows: int,
    dist: Dist | None = None,
    category_counts: dict[str, int] | None = None,
    exact: bool = True,
    method: str | None = None,
    threshold: float | None = None,
    min_rows: int = 30,
) -> FeatureDrift:
    """Drift of one feature whose window is known as a distribution, not as raw values.

    For numeric features ``dist`` is the window's distribution (``dist.n`` usable values),
    for categorical ones ``category_counts`` maps labels to counts; ``rows`` counts every
    row of the window, nulls included, and neither given means the column is absent
    ("missing"). ``exact`` false marks the result approximate (and keeps the KS p-value on
    its asymptotic branch; for ``category_counts`` it means a truncated label list, pooled
    as a truncated stored summary's). The statuses and statistics are those of
    :func:`feature_drift`.
    """
    kind = reference["kind"]
    if dist is None and category_counts is None:
        return _verdict(name, reference, None, 0, method=method, threshold=threshold, min_rows=min_rows)
    if (kind == "numeric") != (dist is not None):
        raise MLError(f"Feature {name!r} is {kind}: give {'dist' if kind == 'numeric' else 'category_counts'}.",
                      field="kind")
    cur = _Current(kind, counts=category_counts, dist=dist, exact=exact)
    return _verdict(name, reference, cur, rows, method=method, threshold=threshold, min_rows=min_rows)


def compare_references(
    name: str,
    ref_a: dict[str, Any],
    ref_b: dict[str, Any],
    *,
    method: str | None = None,
    threshold: float | None = None,
    min_rows: int = 30,
) -> FeatureDrift:
    """Drift of dataset version B against version A, from their two stored summaries.

    B is read back as the distribution its summary describes (exact values, or atoms plus
    a linear-within-bin histogram) and the same statistic is run; ``approximate`` is set
    whenever either summary is not exact. ``rows`` is B's n.
    """
    if ref_a["kind"] != ref_b["kind"]:
        raise MLError(
            f"Feature {name!r} is {ref_a['kind']} in one version and {ref_b['kind']} in the other.",
            field="kind",
        )
    cur = _Current(ref_b["kind"], summary=ref_b)
    return _verdict(name, ref_a, cur, cur.n, method=method, threshold=threshold, min_rows=min_rows)


def dataset_drift(features: list[FeatureDrift], share: float = 0.5) -> dict[str, Any]:
    """Dataset-level verdict: drift when at least ``share`` of the judged features drift.

    Features without a verdict (missing, all null, not enough data) are left out of the
    share; with no judged feature at all the verdict is None, not False.
    """
    judged = [f for f in features if f.drifted is not None]
    drifted = [f.name for f in judged if f.drifted]
    frac = len(drifted) / len(judged) if judged else 0.0
    return {
        "dataset_drift": (frac >= share) if judged else None,
        "drift_share": frac,
        "drifted": drifted,
        "evaluated": len(judged),
    }
