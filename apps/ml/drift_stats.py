"""Drift statistics on count vectors, and the KS p-value scipy's ks_2samp would give.

Kept apart from :mod:`apps.ml.drift` so that the formulas checked against scipy sit in
one short file; see that module's docstring for the definitions and thresholds.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from scipy.special import rel_entr

KS_EXACT_MAX_N = 10_000  # scipy ks_2samp 'auto': exact p-value when max(n1, n2) <= this
PSI_EPS = 1e-4


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """PSI ``sum((a - b) * ln(a / b))`` of two count vectors over the same bins, a share of
    exactly 0 replaced by PSI_EPS (see :mod:`apps.ml.drift`)."""
    a = np.asarray(ref_counts, dtype=np.float64)
    b = np.asarray(cur_counts, dtype=np.float64)
    a, b = a / a.sum(), b / b.sum()
    a, b = np.where(a == 0, PSI_EPS, a), np.where(b == 0, PSI_EPS, b)
    return float(np.sum((a - b) * np.log(a / b)))


def js_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """scipy's jensenshannon(p, q, base=2), same operations, with the divergence clamped at 0."""
    p = np.asarray(ref_counts, dtype=np.float64)
    q = np.asarray(cur_counts, dtype=np.float64)
    p, q = p / np.sum(p), q / np.sum(q)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))
    js /= np.log(2.0)
    return float(np.sqrt(max(js / 2.0, 0.0)))


def chi2_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """``chi2_contingency`` (scipy defaults) on the 2 x K table; all-zero columns dropped."""
    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    res = stats.chi2_contingency(table)
    return float(res.statistic), float(res.pvalue)


def ks_pvalue(d: float, n1: int, n2: int, counts: tuple[int, int] | None) -> float:
    """The p-value ``ks_2samp(method='auto')`` gives for statistic ``d`` and sizes n1, n2.

    Exact branch: scipy's exact p-value depends only on (n1, n2, round(D * lcm)); two 0/1
    samples whose ECDFs differ by the same ``counts[0]/n1 - counts[1]/n2`` reproduce it
    through the public API (cost O(n1 + n2) <= 20,000). ``counts`` is None when D is
    approximate, which only happens for n > 20,000, i.e. on the asymptotic branch anyway.
    """
    if max(n1, n2) <= KS_EXACT_MAX_N and counts is not None:
        a, b = counts
        x1 = np.repeat([0.0, 1.0], [a, n1 - a])
        x2 = np.repeat([0.0, 1.0], [b, n2 - b])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return float(stats.ks_2samp(x1, x2).pvalue)
    m, n = sorted([float(n1), float(n2)], reverse=True)
    return float(np.clip(stats.kstwo.sf(d, np.round(m * n / (m + n))), 0.0, 1.0))
