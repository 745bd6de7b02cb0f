"""Reference summaries for drift checks, and the distribution model they define.

Why this module exists: a drift check compares a window of production values with the
training data, but must never re-read the training file. So when a dataset version is
profiled, each feature is summarised once into a JSON-serialisable dict
(:func:`build_reference`), and every later check only touches that dict and the window.

Numeric summary (``kind == "numeric"``)::

    {"kind": "numeric", "version": 1, "n": int,          # finite values only
     "min", "max", "mean", "std": float | None,          # std is np.std (ddof=0)
     "exact": bool,
     "values": [float], "counts": [int],                 # distinct values stored exactly
     "hist_edges": [float], "hist_counts": [int],        # fine histogram of the rest
     "psi_cuts": [float], "psi_counts": [int],           # PSI_BINS quantile bins
     "chart_edges": [float], "chart_counts": [int]}      # ~CHART_BINS bins for charts

* ``exact`` is true when the reference has at most ``EXACT_MAX_DISTINCT`` distinct values
  (so always when n <= 20,000): ``values``/``counts`` then hold *every* distinct value with
  its multiplicity, a lossless (and smaller) form of the full sorted sample, and KS /
  Wasserstein equal scipy on the full reference.
* Otherwise ``values``/``counts`` keep only the "atoms" (values holding more than
  1/HIST_BINS of the mass, e.g. a spike at 0) and the other values go into a fine
  histogram whose edges are the union of ``HIST_WIDTH_BINS`` equal-width edges over
  [min, max] and ``HIST_QUANTILE_BINS`` quantile edges, so no bin holds more than about
  1e-4 of the mass *and* none is wider than range/2000. Inside a bin the CDF is taken as
  linear; results from this path are flagged ``approximate``.
* PSI bins are ``[cut_{k-1}, cut_k)`` with open outer bins, ``cuts`` being the distinct
  interior quantiles of the reference (see :func:`quantile_cuts`); counts are exact.

Categorical summary (``kind == "categorical"``)::

    {"kind": "categorical", "version": 1, "n": int, "exact": bool,
     "categories": [str], "counts": [int], "other": int}

Categories are sorted by count (desc) then label. At most ``CATEGORY_MAX`` are kept; the
rest is summed into ``other`` and ``exact`` becomes false.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .errors import MLError

SUMMARY_VERSION = 1
EXACT_MAX_DISTINCT = 20_000
HIST_QUANTILE_BINS = 8_000
HIST_WIDTH_BINS = 2_000
HIST_BINS = HIST_QUANTILE_BINS + HIST_WIDTH_BINS
PSI_BINS = 10
CHART_BINS = 20
CATEGORY_MAX = 10_000
OTHER = "__other__"


# --------------------------------------------------------------------------- coercion
def numeric_values(values: Any) -> tuple[np.ndarray, int]:
    """Return ``(finite float64 values, number of input rows)``.

    None/NaN/±inf and (for object input) anything non-numeric are dropped: a drift check
    must not crash on a dirty production window, it reports the rows it could use.
    """
    arr = numeric_array(values)
    return arr[np.isfinite(arr)], int(arr.size)


def numeric_array(values: Any) -> np.ndarray:
    """All input rows as float64: None and anything non-numeric become NaN, ±inf stay."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        arr = values.astype(np.float64, copy=False).ravel()
    else:
        if not isinstance(values, pd.Series):
            values = pd.Series(values if isinstance(values, np.ndarray) else list(values), dtype=object)
        if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            try:
                values = pd.to_numeric(values.astype(object), errors="coerce")
            except OverflowError:  # an integer beyond float64 (JSON allows one) is +-inf, not a crash
                values = pd.to_numeric(values.astype(object).map(_float_or_infinite), errors="coerce")
        arr = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return arr


def _float_or_infinite(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return float("inf") if value > 0 else float("-inf")
    return value


def category_label(value: Any) -> str:
    """Stringify a category so that a column read as int and as float (because of NaNs)
    gives the same label: ``3``, ``3.0`` and ``np.float64(3)`` all become ``"3"``."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_counts(values: Any) -> tuple[dict[str, int], int]:
    """Return ``({label: count}, number of input rows)``; nulls are not counted.

    Counting happens on the raw values first (hashing, O(rows)) and only the distinct
    values are stringified, which keeps a 100k-row window cheap.
    """
    if not isinstance(values, pd.Series):
        values = pd.Series(values if isinstance(values, np.ndarray) else list(values))
    out: dict[str, int] = {}
    vc = values.value_counts(dropna=True, sort=False)
    for label, count in zip(vc.index.tolist(), vc.to_numpy().tolist(), strict=True):
        if label is None or (isinstance(label, float) and label != label):
            continue
        key = category_label(label)
        out[key] = out.get(key, 0) + int(count)
    return out, len(values)


# --------------------------------------------------------------------------- binning
def quantile_cuts(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Distinct interior quantiles (numpy's default 'linear' method) of the reference.

    Bins are ``(-inf, c1), [c1, c2), ..., [c_last, +inf)``: open outer bins so that
    production values outside the training range are counted, not dropped; using the
    *interior* quantiles keeps a binary 0/1 feature at two populated bins instead of one.
    """
    if sorted_values.size == 0:
        return np.empty(0)
    q = np.quantile(sorted_values, np.linspace(0.0, 1.0, bins + 1))
    return np.unique(q[1:-1])


def bin_counts(sorted_values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts of (sorted) values in the bins ``[c_{k-1}, c_k)`` defined by ``cuts`` (see
    :func:`quantile_cuts`): O(bins log n) on a sorted array."""
    below = np.searchsorted(sorted_values, cuts, side="left")
    return np.diff(np.r_[0, below, sorted_values.size])


def chart_edges(distinct: np.ndarray, sorted_values: np.ndarray) -> np.ndarray:
    """Display edges: ~CHART_BINS quantile bins, or one bin per value for a feature with
    few distinct values (quantile edges would merge 0 and 1 of a binary feature)."""
    if distinct.size == 0:
        return np.empty(0)
    if distinct.size <= CHART_BINS:
        mids = (distinct[1:] + distinct[:-1]) / 2.0
        half = (distinct[-1] - distinct[0]) / (2 * max(distinct.size - 1, 1)) or 0.5
        return np.concatenate([[distinct[0] - half], mids, [distinct[-1] + half]])
    return np.unique(np.quantile(sorted_values, np.linspace(0.0, 1.0, CHART_BINS + 1)))


# --------------------------------------------------------------------------- build
def build_reference(values: Any, kind: str) -> dict[str, Any]:
    """Summarise a reference feature once, as JSON-ready plain Python types.

    ``values`` are the feature's values (non-null expected; numeric non-finite values and
    nulls are ignored anyway). See the module docstring for the exact shape.
    """
    if kind == "numeric":
        return _build_numeric(values)
    if kind == "categorical":
        return _build_categorical(values)
    raise MLError(f"Unknown feature kind {kind!r}: expected 'numeric' or 'categorical'.", field="kind")


def _build_numeric(values: Any) -> dict[str, Any]:
    x, _ = numeric_values(values)
    s = np.sort(x)
    n = int(s.size)
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if n else np.empty(0, dtype=np.int64)
    distinct = s[first]
    counts = np.diff(np.r_[first, n]).astype(np.int64)
    exact = distinct.size <= EXACT_MAX_DISTINCT
    hist_edges = hist_counts = np.empty(0)
    if not exact:
        heavy = counts * HIST_BINS > n
        rest = s[np.repeat(~heavy, counts)]
        distinct, counts = distinct[heavy], counts[heavy]
        hist_edges = np.unique(
            np.concatenate(
                [
                    np.linspace(rest[0], rest[-1], HIST_WIDTH_BINS + 1),
                    np.quantile(rest, np.linspace(0.0, 1.0, HIST_QUANTILE_BINS + 1)),
                ]
            )
        )
        cum = np.searchsorted(rest, hist_edges, side="right")
        cum[0] = 0
        hist_counts = np.diff(cum)
    psi_cuts = quantile_cuts(s, PSI_BINS)
    edges = chart_edges(s[first] if n else s, s)
    return {
        "kind": "numeric",
        "version": SUMMARY_VERSION,
        "n": n,
        "min": float(s[0]) if n else None,
        "max": float(s[-1]) if n else None,
        "mean": float(np.mean(x)) if n else None,
        "std": float(np.std(x)) if n else None,
        "exact": bool(exact),
        "values": distinct.tolist(),
        "counts": counts.tolist(),
        "hist_edges": hist_edges.tolist(),
        "hist_counts": [int(c) for c in hist_counts],
        "psi_cuts": psi_cuts.tolist(),
        "psi_counts": bin_counts(s, psi_cuts).tolist() if n else [],
        "chart_edges": edges.tolist(),
        "chart_counts": bin_counts(s, edges[1:-1]).tolist() if n else [],
    }


def _build_categorical(values: Any) -> dict[str, Any]:
    counts, _ = category_counts(values)
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept, dropped = items[:CATEGORY_MAX], items[CATEGORY_MAX:]
    return {
        "kind": "categorical",
        "version": SUMMARY_VERSION,
        "n": int(sum(counts.values())),
        "exact": not dropped,
        "categories": [k for k, _ in kept],
        "counts": [int(v) for _, v in kept],
        "other": int(sum(v for _, v in dropped)),
    }


# --------------------------------------------------------------------------- distribution model
@dataclass(frozen=True)
class Dist:
    """A 1-D distribution as exact atoms plus a piecewise-linear (binned) remainder.

    ``cdf`` returns *counts* (not shares) so that, in the exact case, CDF values are the
    same integers scipy counts and ``count / n`` gives bit-identical floats.
    """

    n: int
    atom_x: np.ndarray
    atom_cum: np.ndarray  # len(atom_x) + 1, cumulative counts starting at 0
    edges: np.ndarray
    bin_cum: np.ndarray  # len(edges), cumulative counts starting at 0
    exact: bool

    @classmethod
    def from_sorted(cls, s: np.ndarray) -> Dist:
        """Exact distribution of a sorted sample, used as is: duplicates are allowed (each
        is an atom of mass 1), so no np.unique pass is needed on the window."""
        return cls(int(s.size), s, np.arange(s.size + 1, dtype=np.float64), np.empty(0), np.empty(0), True)

    @classmethod
    def from_summary(cls, ref: dict[str, Any]) -> Dist:
        """The distribution a stored numeric summary describes (no sorting: it is stored sorted)."""
        counts = np.asarray(ref["counts"], dtype=np.float64)
        hist = np.asarray(ref["hist_counts"], dtype=np.float64)
        return cls(
            int(ref["n"]),
            np.asarray(ref["values"], dtype=np.float64),
            np.r_[0.0, np.cumsum(counts)],
            np.asarray(ref["hist_edges"], dtype=np.float64),
            np.r_[0.0, np.cumsum(hist)] if hist.size else np.empty(0),
            bool(ref["exact"]),
        )

    def points(self) -> np.ndarray:
        """Every x where the CDF has a jump or a kink."""
        return np.concatenate([self.atom_x, self.edges])

    def cdf(self, x: np.ndarray, *, left: bool = False) -> np.ndarray:
        """Count of mass <= x (or < x with ``left``), linear inside histogram bins."""
        out = self.atom_cum[np.searchsorted(self.atom_x, x, side="left" if left else "right")]
        if self.edges.size:
            e = self.edges
            i = np.clip(np.searchsorted(e, x, side="right") - 1, 0, e.size - 2)
            lo = e[i]
            frac = np.clip((x - lo) / (e[i + 1] - lo), 0.0, 1.0)
            out = out + self.bin_cum[i] + frac * (self.bin_cum[i + 1] - self.bin_cum[i])
        return out


@dataclass(frozen=True)
class CdfComparison:
    """KS statistic and Wasserstein-1 distance of two :class:`Dist`, from one pass.

    ``counts`` are the integer CDF counts (of p, of q) where the KS statistic is attained,
    used to obtain scipy's exact p-value; they are meaningful only when both are exact.
    """

    ks: float
    wasserstein: float
    counts: tuple[int, int]


def _merged_counts(
    order: np.ndarray, weights: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulated ``weights`` (given in concatenation order) at the distinct merged points:
    (mass <= point, mass < point). Replaces two binary searches by one O(n) cumsum."""
    c = np.r_[0.0, np.cumsum(weights[order])]
    return c[ends], c[starts]


def _cdf_at(
    dist: Dist,
    pts: np.ndarray,
    order: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    offset: int,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """CDF counts of ``dist`` (right value, left limit) at the distinct merged points, from
    the merge order; ``dist``'s atoms then edges sit at ``offset`` in the concatenation."""
    k = dist.atom_x.size
    w = np.zeros(size)
    w[offset : offset + k] = np.diff(dist.atom_cum)
    right, left = _merged_counts(order, w, starts, ends)
    if dist.edges.size:
        e = dist.edges
        w = np.zeros(size)
        w[offset + k : offset + k + e.size] = 1.0
        i = np.clip(_merged_counts(order, w, starts, ends)[0].astype(np.intp) - 1, 0, e.size - 2)
        lo = e[i]
        frac = np.clip((pts - lo) / (e[i + 1] - lo), 0.0, 1.0)
        cont = dist.bin_cum[i] + frac * (dist.bin_cum[i + 1] - dist.bin_cum[i])
        right, left = right + cont, left + cont
    return right, left


def compare_cdfs(p: Dist, q: Dist) -> CdfComparison:
    """Compare two CDFs at every breakpoint of either.

    Between consecutive breakpoints both CDFs are linear (constant in the exact case), so
    the difference there runs linearly from its right value ``u`` at the left point to its
    left limit ``v`` at the right point: sup |F-G| is attained at one of those, and the
    integral of |F-G| over the gap is ``w*(|u|+|v|)/2`` (same sign) or
    ``w*(u²+v²)/(2(|u|+|v|))`` (a sign change). For two samples u == v and this is exactly
    scipy's ``sum(|U-V| * deltas)``.

    The breakpoints are merged with a stable argsort of four already-sorted runs (linear
    in practice) and every CDF is read off cumulative sums in merged order, so no binary
    search over the window is needed.
    """
    raw = np.concatenate([p.atom_x, p.edges, q.atom_x, q.edges])
    order = np.argsort(raw, kind="stable")
    merged = raw[order]
    starts = np.flatnonzero(np.r_[True, merged[1:] != merged[:-1]])
    ends = np.r_[starts[1:], merged.size]
    pts = merged[starts]
    fp, gp = _cdf_at(p, pts, order, starts, ends, 0, raw.size)
    fq, gq = _cdf_at(q, pts, order, starts, ends, p.atom_x.size + p.edges.size, raw.size)
    u = fp / p.n - fq / q.n
    v = gp / p.n - gq / q.n
    au, av = np.abs(u), np.abs(v)
    iu, iv = int(np.argmax(au)), int(np.argmax(av))
    if au[iu] >= av[iv]:
        d, counts = float(au[iu]), (round(fp[iu]), round(fq[iu]))
    else:
        d, counts = float(av[iv]), (round(gp[iv]), round(gq[iv]))
    a, b = u[:-1], v[1:]
    s = np.abs(a) + np.abs(b)
    cross = (a * a + b * b) / (2.0 * np.where(s > 0, s, 1.0))
    area = np.where(a * b >= 0, 0.5 * s, cross) * np.diff(pts)
    return CdfComparison(d, float(np.sum(area)), counts)
