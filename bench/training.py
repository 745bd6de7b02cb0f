"""Benchmark ``run_training`` against the same work done by hand with plain scikit-learn.

Usage: ``.venv/bin/python bench/training.py [--rows 100000] [--folds 5] [--algorithm KEY]``

Both sides do: holdout split, k-fold cross-validation with full metrics per
fold, a final fit on the training part, holdout metrics + confusion matrix +
ROC curve, and permutation importance on (up to 5,000) holdout rows. The
permutation-importance step is timed separately on both sides so the overhead
of our wrapper can be read with and without it. On a shared or small machine,
OpenMP oversubscription makes HistGradientBoosting timings swing wildly; use
``--threads 1`` (and ``--repeat``) for a stable comparison.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.ml.catalog import get_algorithm  # noqa: E402
from apps.ml.train import TrainingSpec, run_training  # noqa: E402

N_NUMERIC = 16
N_CATEGORICAL = 4


def make_dataset(rows: int, seed: int) -> pd.DataFrame:
    """20 features (16 numeric with ~2% missing, 4 categorical), binary text target; fixed seed."""
    X, y = make_classification(
        n_samples=rows, n_features=N_NUMERIC, n_informative=8, n_redundant=2, random_state=seed
    )
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(X, columns=[f"num_{i}" for i in range(N_NUMERIC)])
    df = df.mask(rng.random(df.shape) < 0.02)
    for j in range(N_CATEGORICAL):
        levels = np.array([f"L{k}" for k in range(5 + 5 * j)])
        signal = np.digitize(X[:, j], np.quantile(X[:, j], np.linspace(0, 1, len(levels) + 1)[1:-1]))
        noisy = np.where(rng.random(rows) < 0.3, rng.integers(0, len(levels), rows), signal)
        col = pd.Series(levels[noisy], dtype=object)
        col[rng.random(rows) < 0.01] = np.nan
        df[f"cat_{j}"] = col
    df["target"] = np.where(y == 1, "yes", "no")
    return df


def baseline(df: pd.DataFrame, spec: TrainingSpec) -> tuple[dict[str, float], float]:
    """The same steps as run_training, written directly against scikit-learn.

    Returns the holdout scores and the seconds spent in permutation importance.
    """
    numeric = [c for c in df.columns if c.startswith("num_")]
    categorical = [c for c in df.columns if c.startswith("cat_")]
    X, y = df[numeric + categorical], df["target"].to_numpy(dtype=object)
    X_train, X_hold, y_train, y_hold = train_test_split(
        X, y, test_size=spec.holdout_fraction, random_state=spec.split_seed, stratify=y
    )
    pre = ColumnTransformer(
        [
            ("num", Pipeline([("i", SimpleImputer(strategy="median")), ("s", StandardScaler())]), numeric),
            (
                "cat",
                Pipeline(
                    [
                        ("i", SimpleImputer(strategy="most_frequent")),
                        ("o", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0.0,
    )
    model = Pipeline(
        [("p", pre), ("m", get_algorithm(spec.algorithm).make_estimator(spec.params, spec.random_state))]
    )
    classes = sorted(set(y))

    def evaluate(fitted: Pipeline, Xe: pd.DataFrame, ye: np.ndarray) -> dict[str, float]:
        pred, proba = fitted.predict(Xe), fitted.predict_proba(Xe)
        return {
            "accuracy": skm.accuracy_score(ye, pred),
            "precision": skm.precision_score(ye, pred, average="macro", zero_division=0),
            "recall": skm.recall_score(ye, pred, average="macro", zero_division=0),
            "f1": skm.f1_score(ye, pred, average="macro", zero_division=0),
            "roc_auc": skm.roc_auc_score(ye == classes[1], proba[:, 1]),
            "log_loss": skm.log_loss(ye, proba, labels=classes),
        }

    cv = StratifiedKFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split_seed)
    for fit_idx, val_idx in cv.split(X_train, y_train):
        evaluate(
            clone(model).fit(X_train.iloc[fit_idx], y_train[fit_idx]), X_train.iloc[val_idx], y_train[val_idx]
        )
    final = clone(model).fit(X_train, y_train)
    scores = evaluate(final, X_hold, y_hold)
    pred, proba = final.predict(X_hold), final.predict_proba(X_hold)
    skm.confusion_matrix(y_hold, pred, labels=classes)
    skm.roc_curve(y_hold == classes[1], proba[:, 1])
    t0 = time.perf_counter()
    rows = np.sort(
        np.random.default_rng(spec.random_state).choice(len(X_hold), min(5000, len(X_hold)), replace=False)
    )
    permutation_importance(
        final,
        X_hold.iloc[rows],
        y_hold[rows],
        scoring="accuracy",
        n_repeats=5,
        random_state=spec.random_state,
    )
    return scores, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--algorithm", default="hist_gradient_boosting_classifier")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=0, help="BLAS/OpenMP threads (0 = library default)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side; the fastest is reported")
    args = parser.parse_args()

    t0 = time.perf_counter()
    df = make_dataset(args.rows, args.seed)
    print(
        f"dataset: {len(df):,} rows x {df.shape[1] - 1} features "
        f"({N_NUMERIC} numeric, {N_CATEGORICAL} categorical), built in {time.perf_counter() - t0:.2f}s"
    )
    features = [
        {"name": c, "role": "numeric" if c.startswith("num_") else "categorical"}
        for c in df.columns
        if c != "target"
    ]
    spec = TrainingSpec(
        "classification",
        "target",
        features,
        args.algorithm,
        {},
        cv_folds=args.folds,
        split_seed=args.seed,
        random_state=args.seed,
    )
    print(f"spec: {spec.algorithm} {spec.params}, {spec.cv_folds} folds, holdout {spec.holdout_fraction}")

    limits = threadpool_limits(args.threads) if args.threads else None
    threads = args.threads or "library default"
    print(f"threads: {threads}; repeats: {args.repeat} (best of, ours and baseline interleaved)")

    ours_runs: list[tuple[float, float]] = []
    base_runs: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_training(df, spec)
        ours_runs.append((time.perf_counter() - t0, result.timings["importance"]))
        t0 = time.perf_counter()
        base_scores, base_importance = baseline(df, spec)
        base_runs.append((time.perf_counter() - t0, base_importance))
    if limits is not None:
        limits.restore_original_limits()
    ours, ours_imp = min(ours_runs)
    base, base_imp = min(base_runs)
    t = result.timings
    print(
        f"(a) run_training:                  {ours:8.2f}s  (cv {t['cross_validation']:.2f}s, fit {t['fit']:.2f}s, "
        f"evaluate {t['evaluate']:.2f}s, importance {ours_imp:.2f}s)"
    )
    print(f"(b) plain sklearn, same steps:     {base:8.2f}s  (importance {base_imp:.2f}s)")
    print(f"    without permutation importance: ours {ours - ours_imp:.2f}s, baseline {base - base_imp:.2f}s")
    print(f"ratio ours/baseline (with importance):    {ours / base:.3f}")
    print(f"ratio ours/baseline (without importance): {(ours - ours_imp) / (base - base_imp):.3f}")
    print(
        f"all runs (s): ours {[round(r[0], 2) for r in ours_runs]}, baseline {[round(r[0], 2) for r in base_runs]}"
    )
    print(f"holdout accuracy: ours {result.metrics['accuracy']:.4f}, baseline {base_scores['accuracy']:.4f}")


if __name__ == "__main__":
    main()
