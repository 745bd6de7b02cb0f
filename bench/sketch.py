"""Benchmark drift checks from 24 merged hourly sketches against today's raw-row check.

Usage: python bench/sketch.py [--ref-rows N] [--window-rows W] [--hours H] [--seed S] [--repeat R]

20 features (15 numeric: normal, lognormal, a spike at 0, rounded values, Cauchy tails,
Poisson counts; 5 categorical of 20 levels), a reference of ``--ref-rows`` rows summarised
once (``build_reference``) and a window of ``--window-rows`` rows spread over ``--hours``
hours, odd features shifted. Two checks of the same window, default method per feature:

* raw: ``feature_drift`` on the window's values, what the drift job runs today (without the
  cost of reading the rows from the database, which today's job pays on top);
* sketch: the window's hourly sketches read back from JSON text (as from a JSONB column),
  ``sketch_merge`` per feature, ``sketch_drift``.

Then every method on every feature: the largest |sketch - raw| of each statistic and p-value,
the largest stated error bound, and whether every difference is within its bound. Times are
the best of ``--repeat`` runs (the machine is shared); compare within one run only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from apps.ml.drift import build_reference, feature_drift  # noqa: E402
from apps.ml.sketch import sketch_grid, sketch_merge, sketch_rows, sketch_values  # noqa: E402
from apps.ml.sketch_drift import sketch_drift  # noqa: E402

N_NUMERIC, N_CATEGORICAL, N_LEVELS = 15, 5, 20
NUMERIC_METHODS = ("ks", "wasserstein", "psi", "jensenshannon", "chi2")
CATEGORICAL_METHODS = ("psi", "jensenshannon", "chi2")


def _numeric(rng: np.random.Generator, j: int, n: int, shift: float) -> np.ndarray:
    shape = j % 6
    if shape == 0:
        return rng.normal(shift, 1.0, n)
    if shape == 1:
        return rng.lognormal(shift, 1.0, n)
    if shape == 2:
        return np.where(rng.random(n) < 0.3, 0.0, rng.exponential(1.0, n) + shift)
    if shape == 3:
        return np.round(rng.normal(50 + 10 * shift, 10.0, n), 2)
    if shape == 4:
        return rng.standard_cauchy(n) + shift
    return rng.poisson(4.0 + shift, n).astype(float)


def _categorical(rng: np.random.Generator, n: int, tilt: float) -> np.ndarray:
    p = np.linspace(2.0, 0.5, N_LEVELS) * np.linspace(1.0, 1.0 + tilt, N_LEVELS)
    labels = np.array([f"level_{k:02d}" for k in range(N_LEVELS)], dtype=object)
    return labels[rng.choice(N_LEVELS, size=n, p=p / p.sum())]


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _data(args: argparse.Namespace, rng: np.random.Generator) -> tuple[dict, dict]:
    ref, cur = {}, {}
    for j in range(N_NUMERIC):
        ref[f"x{j}"] = _numeric(rng, j, args.ref_rows, 0.0)
        cur[f"x{j}"] = _numeric(rng, j, args.window_rows, 0.3 if j % 2 else 0.0)
    for j in range(N_CATEGORICAL):
        ref[f"c{j}"] = _categorical(rng, args.ref_rows, 0.0)
        cur[f"c{j}"] = _categorical(rng, args.window_rows, 3.0 if j % 2 else 0.0)
    return ref, cur


def _accuracy(summaries: dict, grids: dict, merged: dict, cur: dict) -> None:
    """Every method on every feature: max |sketch - raw| and the stated bounds."""
    rows: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, ref in summaries.items():
        methods = NUMERIC_METHODS if ref["kind"] == "numeric" else CATEGORICAL_METHODS
        for method in methods:
            raw = feature_drift(name, ref, cur[name], method=method)
            got = sketch_drift(name, grids[name], merged[name], method=method)
            dp = abs(got.p_value - raw.p_value) if raw.p_value is not None else 0.0
            rows.setdefault(f"{ref['kind'][:3]} {method}", []).append(
                (abs(got.statistic - raw.statistic), got.error_bound, dp, got.p_value_error_bound or 0.0))
    print("  statistic          max|diff|  max bound  within   p-value max|diff|  max bound")
    for key, vals in rows.items():
        d, b, dp, bp = (max(v[i] for v in vals) for i in range(4))
        ok = all(v[0] <= v[1] + 1e-9 * max(1.0, v[0]) and v[2] <= v[3] + 1e-9 for v in vals)
        print(f"  {key:18s} {d:9.2e}  {b:9.2e}  {'yes' if ok else 'NO':6s}   {dp:17.2e}  {bp:9.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref-rows", type=int, default=200_000)
    parser.add_argument("--window-rows", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ref, cur = _data(args, rng)
    summaries = {k: json.loads(json.dumps(build_reference(v, "numeric" if k.startswith("x") else "categorical")))
                 for k, v in ref.items()}
    t = time.perf_counter()
    grids = {k: sketch_grid(s) for k, s in summaries.items()}
    t_grid = time.perf_counter() - t

    def ingest() -> dict[str, list[str]]:
        return {k: [json.dumps(sketch_values(grids[k], part)) for part in np.array_split(cur[k], args.hours)]
                for k in cur}

    t_ingest, stored = _best(ingest, 1)
    sizes = [len(s) for parts in stored.values() for s in parts]
    logged = [{k: (float(v[i]) if k.startswith("x") else v[i]) for k, v in cur.items()} for i in range(1000)]
    t_one, _ = _best(lambda: sketch_rows(grids, logged[:1]), 20)
    t_batch, _ = _best(lambda: sketch_rows(grids, logged), args.repeat)

    def raw_check() -> list:
        return [feature_drift(k, summaries[k], cur[k]) for k in cur]

    def sketch_check() -> tuple[list, dict]:
        merged = {k: sketch_merge(grids[k], [json.loads(s) for s in stored[k]]) for k in cur}
        return [sketch_drift(k, grids[k], merged[k]) for k in cur], merged

    t_raw, raw = _best(raw_check, args.repeat)
    t_sk, (sk, merged) = _best(sketch_check, args.repeat)
    t_90, _ = _best(lambda: sketch_merge(grids["x0"], [json.loads(s) for s in stored["x0"] * 90]), 1)

    print(f"{len(cur)} features ({N_NUMERIC} numeric, {N_CATEGORICAL} categorical); reference "
          f"{args.ref_rows:,} rows; window {args.window_rows:,} rows in {args.hours} hourly sketches")
    print(f"  grids from the 20 reference summaries (once per reference): {t_grid:.3f} s")
    print(f"  ingest: sketching all hours ({args.window_rows * len(cur):,} values): {t_ingest:.2f} s "
          f"= {t_ingest / args.window_rows * 1e6:.2f} us per row of 20 features")
    print(f"  sketch_rows on logged rows (JSON-like dicts): 1 row {t_one * 1e3:.2f} ms, "
          f"1,000 rows {t_batch * 1e3:.1f} ms")
    print(f"  sketch size per feature-hour: mean {np.mean(sizes) / 1000:.1f} kB, max {max(sizes) / 1000:.1f} kB"
          f" ({np.mean(sizes) * len(cur) / 1000:.0f} kB per hour for {len(cur)} features,"
          f" {args.window_rows // args.hours:,} rows per hour)")
    print(f"  raw check, feature_drift on the rows (default methods): {t_raw:.3f} s")
    print(f"  sketch check, read + merge {args.hours} hours + sketch_drift: {t_sk:.3f} s")
    print(f"  ratio raw / sketch: {t_raw / t_sk:.1f}x")
    print(f"  one feature over 90 days ({args.hours * 90} hourly sketches) read + merged: {t_90:.3f} s")
    same = sum(a.drifted == b.drifted for a, b in zip(raw, sk, strict=True))
    print(f"  same verdict on {same} of {len(raw)} features; drifted (sketch): "
          f"{[v.name for v in sk if v.drifted]}")
    print("  truly shifted: x1, x3, ..., x13, c1, c3 (x4/x10 Cauchy: the std-normalised Wasserstein misses them)")
    _accuracy(summaries, grids, merged, cur)


if __name__ == "__main__":
    main()
