"""Drift statistics and chart data from a (merged) sketch, with their error bounds.

:func:`sketch_drift` returns the :class:`~apps.ml.drift.FeatureDrift` that
:func:`~apps.ml.drift.feature_drift` gives on the window's raw rows (same statuses,
methods, thresholds, charts), plus ``error_bound`` / ``p_value_error_bound``: the largest
possible difference from the raw-rows result against the same reference summary.
``approximate`` is set when that bound is not 0 or, as before, when the reference summary
itself is a histogram. The sketch layout is in :mod:`apps.ml.sketch`.

Where the sketch is exact (bound 0, so equal to scipy on the raw rows where the summary is
exact): PSI, and Jensen-Shannon / chi-squared on the PSI bins, always (the bins are sums of
cells); the chart bins always; KS and Wasserstein whenever no current value fell strictly
inside a grid cell, e.g. integer or coded features whose values are reference values; KS
also wherever the reference has no mass inside the cells the current mass fell in (every
cell, for a reference with at most GRID_ALL_VALUES_MAX distinct values); categorical
statistics below the unseen-label cap.

Elsewhere, with ``m_k`` / ``r_k`` the current / reference shares strictly inside interior
cell ``k`` (width ``w_k``), from monotonicity of both CDFs inside a cell:

* KS statistic: ``|D - D_raw| <= max_k min(m_k, r_k)``; the p-value bound is the spread of
  the p-value over that interval of D (scipy's exact method on its lattice of attainable D
  when both sizes are <= 10,000, the asymptotic one otherwise).
* Wasserstein: ``|W - W_raw| <= sum_k m_k * w_k / 2``, divided like W by the reference std;
  the tails are exact (the sketch keeps the sum of distances beyond the grid).
* Categorical with pooled unseen labels: Jensen-Shannon and the chi-squared statistic are
  exact (they depend on labels unseen in the reference only through their total); PSI is
  bounded over every way the pooled rows could split into at most ``other_labels`` labels
  (its terms are convex in a label's share); the chi-squared p-value over the degrees of
  freedom that allows.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from scipy import stats

from .drift import (
    P_VALUE_METHODS,
    STD_FLOOR,
    FeatureDrift,
    default_method,
    feature_drift_from_distribution,
)
from .drift_stats import KS_EXACT_MAX_N, PSI_EPS, chi2_from_counts, ks_pvalue
from .drift_summary import OTHER, Dist
from .sketch import CategoryCounts, NumericCells, SketchGrid, sketch_parse


# --------------------------------------------------------------------------- verdicts
def sketch_drift(
    name: str,
    grid: SketchGrid,
    sketch: dict[str, Any],
    *,
    method: str | None = None,
    threshold: float | None = None,
    min_rows: int = 30,
) -> FeatureDrift:
    """Drift of one feature from a (merged) sketch on ``grid``: what
    :func:`~apps.ml.drift.feature_drift` gives on the rows, with error bounds."""
    s = sketch_parse(grid, sketch)
    ref = grid.reference
    opts = dict(method=method, threshold=threshold, min_rows=min_rows)
    if s.rows == s.absent:
        return feature_drift_from_distribution(name, ref, rows=0, **opts)
    chosen = method or default_method(ref["kind"], int(ref["n"]))
    if isinstance(s, NumericCells):
        dist = current_dist(grid, s)
        bound = _numeric_bound(grid, s, chosen)
        verdict = feature_drift_from_distribution(name, ref, rows=s.rows, dist=dist, exact=bound == 0, **opts)
        if verdict.statistic is None:
            return verdict
        p, p_bound = verdict.p_value, (0.0 if chosen in P_VALUE_METHODS else None)
        if chosen == "ks" and bound > 0:
            p, p_bound = _ks_p_range(verdict.statistic, bound, int(ref["n"]), dist.n)
        return _with_bounds(verdict, bound, p, p_bound)
    counts = dict(s.counts)
    if s.other:
        counts[OTHER] = counts.get(OTHER, 0) + s.other
    verdict = feature_drift_from_distribution(name, ref, rows=s.rows, category_counts=counts, **opts)
    if verdict.statistic is None:
        return verdict
    bound, p_bound = 0.0, (0.0 if chosen in P_VALUE_METHODS else None)
    if s.other and ref["exact"]:
        bound, p_bound = _pooled_bounds(grid, s, chosen, verdict)
    return _with_bounds(verdict, bound, verdict.p_value, p_bound)


def _with_bounds(v: FeatureDrift, bound: float, p: float | None, p_bound: float | None) -> FeatureDrift:
    thr = v.threshold
    drifted = bool(p < thr) if v.method in P_VALUE_METHODS else bool(v.statistic >= thr)
    return replace(
        v, p_value=p, drifted=drifted, status="drifted" if drifted else "ok",
        approximate=v.approximate or bound > 0 or bool(p_bound), error_bound=float(bound),
        p_value_error_bound=None if p_bound is None else float(p_bound),
    )


def sketch_chart(grid: SketchGrid, sketch: dict[str, Any]) -> dict[str, Any]:
    """Counts of a sketch on the reference's chart bins (numeric ``edges``, outer bins open)
    or per label (reference order, then unseen labels, then ``__other__``), with its rows,
    absent and null counts: what a deployment page draws for one feature and period."""
    s = sketch_parse(grid, sketch)
    ref = grid.reference
    out: dict[str, Any] = {"rows": s.rows, "absent": s.absent, "nulls": s.nulls}
    if isinstance(s, NumericCells):
        edges = np.asarray(ref["chart_edges"], dtype=np.float64)
        below = current_dist(grid, s).cdf(edges[1:-1], left=True) if edges.size else np.empty(0)
        counts = np.diff(np.r_[0.0, below, float(s.finite)]) if edges.size else np.empty(0)
        return {**out, "non_finite": s.non_finite, "edges": edges.tolist(), "counts": [int(c) for c in counts]}
    cats = list(ref["categories"]) + sorted(k for k in s.counts if k not in grid.categories)
    counts = [s.counts.get(c, 0) for c in cats]
    if s.other:
        cats, counts = cats + [OTHER], counts + [s.other]
    return {**out, "categories": cats, "counts": counts}


# --------------------------------------------------------------------------- numeric
def current_dist(grid: SketchGrid, s: NumericCells) -> Dist:
    """The window's distribution a numeric sketch describes: exact atoms at the points hit,
    each tail as one atom at its mean (which keeps the Wasserstein integral there exact) and
    the rest linear inside its grid cell."""
    p, b = grid.points, grid.bounds
    point = s.cells < p.size
    atom_x, atom_c = p[s.cells[point]], s.counts[point].astype(np.float64)
    j, c = s.cells[~point] - p.size, s.counts[~point].astype(np.float64)
    if b.size == 0:  # a reference without values: nothing to compare with, only n matters
        return Dist(s.finite, np.empty(0), np.zeros(1), np.empty(0), np.empty(0), True)
    low, high = float(c[j == 0].sum()), float(c[j == b.size].sum())
    if low:
        atom_x, atom_c = np.r_[min(b[0] - s.tail_gaps[0] / low, np.nextafter(b[0], -np.inf)), atom_x], np.r_[low, atom_c]
    if high:
        atom_x, atom_c = np.r_[atom_x, max(b[-1] + s.tail_gaps[1] / high, np.nextafter(b[-1], np.inf))], np.r_[atom_c, high]
    edges = bin_cum = np.empty(0)
    inner = (j > 0) & (j < b.size)
    if b.size >= 2:
        hist = np.zeros(b.size - 1)
        hist[j[inner] - 1] = c[inner]
        edges, bin_cum = b, np.r_[0.0, np.cumsum(hist)]
    return Dist(s.finite, atom_x, np.r_[0.0, np.cumsum(atom_c)], edges, bin_cum, not inner.any())


def _inner_cells(grid: SketchGrid, s: NumericCells) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per interior cell: current share strictly inside, reference share strictly inside, width."""
    p, b = grid.points, grid.bounds
    m = np.zeros(max(b.size - 1, 0))
    j = s.cells - p.size
    inner = (j > 0) & (j < b.size)
    m[j[inner] - 1] = s.counts[inner] / max(s.finite, 1)
    return m, grid.inner_reference, np.diff(b)


def _numeric_bound(grid: SketchGrid, s: NumericCells, method: str) -> float:
    if method not in ("ks", "wasserstein") or grid.bounds.size < 2 or int(grid.reference["n"]) == 0:
        return 0.0
    m, r, w = _inner_cells(grid, s)
    if not m.any():
        return 0.0
    if method == "ks":
        return float(np.max(np.minimum(m, np.maximum(r, 0.0))))
    return float(np.sum(m * w) / 2.0) / max(float(grid.reference["std"]), STD_FLOOR)


def _ks_p_range(d: float, err: float, n1: int, n2: int) -> tuple[float, float]:
    """(p-value, its bound) for a KS statistic ``d`` known to within ``err``."""
    lo, hi = max(d - err, 0.0), min(d + err, 1.0)
    if max(n1, n2) > KS_EXACT_MAX_N:
        p = ks_pvalue(d, n1, n2, None)
        return p, max(ks_pvalue(lo, n1, n2, None) - p, p - ks_pvalue(hi, n1, n2, None))
    lcm = math.lcm(n1, n2)

    def p_at(h: int, a: int, b: int) -> float:
        return ks_pvalue(h / lcm, n1, n2, (a, b))

    near = min(_attainable(d * lcm, n1, n2, up=True), _attainable(d * lcm, n1, n2, up=False),
               key=lambda t: abs(t[0] - d * lcm))
    p = p_at(*near)
    p_max = p_at(*_attainable(lo * lcm - 1e-6, n1, n2, up=True))
    p_min = p_at(*_attainable(hi * lcm + 1e-6, n1, n2, up=False))
    return p, max(p_max - p, p - p_min)


def _attainable(target: float, n1: int, n2: int, *, up: bool) -> tuple[int, int, int]:
    """The attainable ``h = |a*L/n1 - b*L/n2|`` (L = lcm) nearest ``target`` from above
    (``up``) or below, with its (a, b): scipy's exact p-value depends on D only through h."""
    lcm = math.lcm(n1, n2)
    best: tuple[int, int, int] | None = None
    for swap in (False, True):
        (na, ua), (nb, ub) = ((n2, lcm // n2), (n1, lcm // n1)) if swap else ((n1, lcm // n1), (n2, lcm // n2))
        b = np.arange(nb + 1, dtype=np.int64)
        if up:
            a = np.ceil((max(target, 0.0) + b * ub) / ua).astype(np.int64)
            ok = a <= na
        else:
            a = np.minimum(np.floor((target + b * ub) / ua).astype(np.int64), na)
            ok = a * ua - b * ub >= 0
        if not ok.any():
            continue
        h = a * ua - b * ub
        k = int(np.argmin(np.where(ok, h, np.iinfo(np.int64).max)) if up else np.argmax(np.where(ok, h, -1)))
        cand = (int(h[k]), int(b[k]), int(a[k])) if swap else (int(h[k]), int(a[k]), int(b[k]))
        if best is None or (cand[0] < best[0] if up else cand[0] > best[0]):
            best = cand
    return best if best is not None else (0, 0, 0)


# --------------------------------------------------------------------------- categorical, pooled labels
def _psi_term(share: np.ndarray) -> np.ndarray:
    """PSI term of a label the reference lacks (its share there is PSI_EPS)."""
    return (share - PSI_EPS) * np.log(share / PSI_EPS)


def _psi_slope(share: np.ndarray) -> np.ndarray:
    return np.log(share / PSI_EPS) + 1.0 - PSI_EPS / share


def _pooled_bounds(
    grid: SketchGrid, s: CategoryCounts, method: str, verdict: FeatureDrift
) -> tuple[float, float | None]:
    """Bounds when ``other`` pools unseen labels against an exact reference (see module doc)."""
    total = sum(s.counts.values()) + s.other
    kept = np.array([v for k, v in s.counts.items() if k not in grid.categories and k != OTHER], dtype=float)
    m_lo = 0 if kept.size else 1
    m_hi = s.other_labels + (1 if OTHER in s.counts else 0)
    if method == "psi":
        return _psi_bound(kept / total, (s.other + s.counts.get(OTHER, 0)) / total, 1.0 / total, m_lo, m_hi), None
    if method == "chi2":
        return _chi2_bounds(grid, s, kept, m_lo, m_hi, verdict)
    return 0.0, None


def _psi_bound(k: np.ndarray, pooled: float, unit: float, m_lo: int, m_hi: int) -> float:
    """How far PSI's unseen-label part can be from its pooled estimate ``sum t(k) + t(pooled)``
    when the pooled share splits over the kept labels ``k`` and m in [m_lo, m_hi] hidden
    labels of at least ``unit`` each. Upper: a vertex (convexity); lower: the tangent at k."""
    base = float(_psi_term(k).sum()) if k.size else 0.0
    est = base + float(_psi_term(np.array([pooled]))[0])
    m_hi = max(m_lo, min(m_hi, int(round(pooled / unit))))  # a hidden label holds at least one row
    highs = []
    for m in (m_lo, m_hi):  # the maximum over m is at an end: it is convex in m
        rest = pooled - m * unit
        gains = [float(np.max(_psi_term(k + rest) - _psi_term(k)))] if k.size else []
        if m >= 1:
            gains.append(float(_psi_term(np.array([unit + rest]))[0] - _psi_term(np.array([unit]))[0]))
        highs.append(base + m * float(_psi_term(np.array([unit]))[0]) + max(gains))
    low = base + (min(0.0, pooled * float(np.min(_psi_slope(k)))) if k.size else 0.0)
    return max(max(highs) - est, est - low, 0.0)


def _chi2_bounds(
    grid: SketchGrid, s: CategoryCounts, kept: np.ndarray, m_lo: int, m_hi: int, verdict: FeatureDrift
) -> tuple[float, float]:
    """Candidates for (statistic, p) over the hidden-label counts m the sketch allows; the
    estimate is m = 1 (the pooled table itself). Without Yates' correction (dof > 1) the
    statistic is the same for every m; the p-value grows with the degrees of freedom."""
    ref = grid.reference
    ref_counts = np.asarray(ref["counts"], dtype=float)
    cur_known = np.array([s.counts.get(c, 0) for c in ref["categories"]], dtype=float)
    pooled = s.other + s.counts.get(OTHER, 0)
    a = np.r_[ref_counts, np.zeros(kept.size + 1)]
    b = np.r_[cur_known, kept, pooled]
    k_base = int(ref_counts.size + kept.size)
    plain = float(stats.chi2_contingency(np.vstack([a, b]), correction=False).statistic)
    cands = [(verdict.statistic, verdict.p_value)]
    if m_lo == 0 and k_base == 2:  # every pooled row in the one kept label: a known 2 x 2 table
        cands.append(chi2_from_counts(a[:-1], np.r_[cur_known, kept + pooled]))
    elif m_lo == 0:
        cands.append((plain, float(stats.chi2.sf(plain, k_base - 1))))
    for m in sorted({min(2, m_hi), m_hi}):
        if m >= 2:
            cands.append((plain, float(stats.chi2.sf(plain, k_base + m - 1))))
    stat_bound = max(abs(c[0] - verdict.statistic) for c in cands)
    return stat_bound, max(abs(c[1] - verdict.p_value) for c in cands)
