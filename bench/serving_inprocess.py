"""In-process latency and throughput of online prediction, ours vs plain scikit-learn.

Usage: ``.venv/bin/python bench/serving_inprocess.py [--algorithms KEY ...] [--single N] [--batches N]``

Model: 15 numeric features (three with ~5 % missing values) + 5 categorical
ones (4–12 levels), 5,000 training rows, binary target; fitted with
``apps.ml.train.build_pipeline``. Default algorithms: logistic regression and
histogram gradient boosting (``--algorithms`` takes any catalog keys).

For each model, three ways to score a request (instances as parsed JSON):

(a) raw pipeline:  ``pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame(instances)))``
    (the frame preparation our pipelines need, then scikit-learn)
(b) raw estimator: ``pipeline[-1].predict_proba(X)`` on the already-transformed
    float matrix (the floor for calling scikit-learn at all; it excludes the
    preprocessing entirely, so it is not something a server can do)
(c) ours:          ``validate_instances`` + ``CompiledPredictor.predict`` — request
    validation, preprocessing, labels *and* probabilities as JSON-ready lists

Single-instance calls report p50/p99 over distinct rows; 1,000-instance
batches report rows/s. Ratios are ours/raw: < 1 means our latency is lower,
> 1 means our throughput is higher. OpenMP-threaded estimators (HGB) run with
scikit-learn's default thread count in (a) and (b), as a server would; pass
``--threads 1`` to limit every thread pool instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.ml.catalog import CATALOG  # noqa: E402
from apps.ml.prepare import prepare_for  # noqa: E402
from apps.ml.serving import CompiledPredictor, validate_instances  # noqa: E402
from apps.ml.train import TrainingSpec, _signature, _target_array, build_pipeline, prepare_inputs  # noqa: E402

N_NUMERIC = 15
N_CATEGORICAL = 5
N_ROWS = 5000
BATCH = 1000


def make_data(seed: int = 0) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    rng = np.random.default_rng(seed)
    X, y = make_classification(
        n_samples=N_ROWS, n_features=N_NUMERIC, n_informative=8, n_redundant=2, random_state=seed
    )
    df = pd.DataFrame(X, columns=[f"num_{i}" for i in range(N_NUMERIC)])
    for i in range(3):
        df.loc[rng.random(N_ROWS) < 0.05, f"num_{i}"] = np.nan
    for j in range(N_CATEGORICAL):
        levels = [f"level_{j}_{k}" for k in range(4 + 2 * j)]
        df[f"cat_{j}"] = pd.Series(rng.choice(levels, N_ROWS), dtype=object)
    df["y"] = np.array(["no", "yes"])[y]
    features = [{"name": f"num_{i}", "role": "numeric"} for i in range(N_NUMERIC)]
    features += [{"name": f"cat_{j}", "role": "categorical"} for j in range(N_CATEGORICAL)]
    return df, features


def as_json_instances(frame: pd.DataFrame) -> list[dict]:
    """What the API receives: the rows after a JSON round trip (NaN → null)."""
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return json.loads(json.dumps(records))


def timings(fn: Callable[[int], object], n: int, warmup: int = 20) -> list[float]:
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e6


def run(algorithm: str, df: pd.DataFrame, features: list[dict], n_single: int, n_batches: int) -> None:
    entry = CATALOG[algorithm]
    spec = TrainingSpec("classification", "y", features, algorithm)
    pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
    signature = _signature(df, df[spec.feature_names], spec)
    for item in signature:  # the three numeric columns with missing values may be null
        item["nullable"] = bool(df[item["name"]].isna().any())
    started = time.perf_counter()
    predictor = CompiledPredictor.from_pipeline(pipeline, signature)
    build_ms = (time.perf_counter() - started) * 1e3
    estimator = pipeline[-1]

    pool = as_json_instances(df[spec.feature_names].sample(n=2000, random_state=1))
    singles = [[row] for row in pool]
    frames = [prepare_for(pipeline, pd.DataFrame(r)) for r in singles[:n_single]]  # (b) gets its matrix precomputed
    matrices = [np.ascontiguousarray(pipeline[:-1].transform(f)) for f in frames]
    batches = [pool[(k * BATCH) % 1000 : (k * BATCH) % 1000 + BATCH] for k in range(max(n_batches, 1))]
    batch_matrices = [np.ascontiguousarray(pipeline[:-1].transform(prepare_for(pipeline, pd.DataFrame(b))))
                      for b in batches]

    def ours(instances: list[dict]) -> object:
        validate_instances(instances, signature, max_instances=BATCH)
        return predictor.predict(instances)

    # sanity: (c) answers exactly what (a) answers
    _, probabilities = ours(batches[0])
    got = np.array([[p[c] for c in predictor.classes] for p in probabilities])
    expected = pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame(batches[0])))
    assert np.array_equal(got, expected), "mismatch with pipeline"

    n_raw = min(n_single, len(frames))
    single = {
        "(a) pipeline + DataFrame": timings(
            lambda i: pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame(singles[i % n_raw]))), n_raw
        ),
        "(b) estimator on matrix": timings(lambda i: estimator.predict_proba(matrices[i % n_raw]), n_raw),
        "(c) validate + compiled": timings(lambda i: ours(singles[i % len(singles)]), n_single),
    }
    batch = {
        "(a) pipeline + DataFrame": timings(
            lambda i: pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame(batches[i % len(batches)]))),
            n_batches, 2,
        ),
        "(b) estimator on matrix": timings(
            lambda i: estimator.predict_proba(batch_matrices[i % len(batches)]), n_batches, 2
        ),
        "(c) validate + compiled": timings(lambda i: ours(batches[i % len(batches)]), n_batches, 2),
    }
    print(f"\n== {entry.name} ({algorithm}) — compiled path: {predictor.path}, kernel: {predictor.kernel}, "
          f"built + verified in {build_ms:.1f} ms")  # fmt: skip
    print(f"{'':28}{'single p50 µs':>14}{'single p99 µs':>14}{'batch rows/s':>14}")
    for name in single:
        rows_per_s = BATCH / statistics.median(batch[name])
        print(f"{name:28}{pct(single[name], 50):14.1f}{pct(single[name], 99):14.1f}{rows_per_s:14,.0f}")
    ours_single, ours_batch = single["(c) validate + compiled"], batch["(c) validate + compiled"]
    for raw in ("(a) pipeline + DataFrame", "(b) estimator on matrix"):
        print(
            f"ours/{raw[:3]}: p50 x{pct(ours_single, 50) / pct(single[raw], 50):.3f}, "
            f"p99 x{pct(ours_single, 99) / pct(single[raw], 99):.3f}, "
            f"throughput x{statistics.median(batch[raw]) / statistics.median(ours_batch):.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--algorithms", nargs="+", default=["logistic_regression", "hist_gradient_boosting_classifier"]
    )
    parser.add_argument("--single", type=int, default=1000, help="single-instance calls per method")
    parser.add_argument("--batches", type=int, default=20, help="1,000-instance batches per method")
    parser.add_argument("--threads", type=int, default=None, help="limit BLAS/OpenMP thread pools")
    args = parser.parse_args()
    df, features = make_data()
    print(f"{N_NUMERIC} numeric + {N_CATEGORICAL} categorical features, {N_ROWS} training rows")
    limit = threadpool_limits(args.threads) if args.threads else contextlib.nullcontext()
    with limit:
        for algorithm in args.algorithms:
            run(algorithm, df, features, args.single, args.batches)


if __name__ == "__main__":
    main()
