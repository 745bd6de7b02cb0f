"""Demo datasets, stored through the real upload service and profiled by the real job.

Two are real data shipped with scikit-learn (no download): breast-cancer diagnostics and
diabetes progression. The third, customer churn, is generated with a fixed seed so that
it has the mixed numeric and categorical columns most business tables have; its third
version breaks the dataset's validation rules on purpose.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.db import transaction
from sklearn.datasets import load_breast_cancer, load_diabetes

from apps.datasets.models import Dataset, VersionSource
from apps.datasets.services import dataset_create, dataset_version_create

CHURN_RULES = {
    "max_missing_share": {"*": 0.05},
    "ranges": {"tenure_months": {"min": 0, "max": 120}, "monthly_charges": {"min": 0, "max": 500}},
    "allowed_categories": {"plan": ["basic", "standard", "premium"]},
    "min_rows": 1000,
    "unique_key": ["customer_id"],
}


def churn_frame(rows: int, *, seed: int, month: int, shift: float = 0.0) -> pd.DataFrame:
    """A customer table whose churn depends on tenure, charges, plan and support calls."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "standard", "premium"], size=rows, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west"], size=rows)
    contract = rng.choice(["monthly", "yearly", "two-year"], size=rows, p=[0.55, 0.3, 0.15])
    tenure = rng.gamma(2.0, 12.0, size=rows).clip(0, 119).round(0)
    base = {"basic": 30.0, "standard": 60.0, "premium": 95.0}
    charges = (np.array([base[p] for p in plan]) + rng.normal(0 + shift * 10, 8, size=rows)).clip(5, None)
    calls = rng.poisson(1.2 + shift, size=rows)
    usage = rng.lognormal(3.0, 0.6, size=rows)
    age = rng.integers(18, 80, size=rows)
    logit = (
        -1.0 - 0.04 * tenure + 0.02 * (charges - 50) + 0.45 * calls
        + np.where(contract == "monthly", 1.0, -0.8) - 0.004 * usage
    )
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    start = month * 100_000
    return pd.DataFrame(
        {
            "customer_id": np.arange(start, start + rows),
            "age": age,
            "region": region,
            "plan": plan,
            "contract": contract,
            "tenure_months": tenure,
            "monthly_charges": charges.round(2),
            "support_calls": calls,
            "data_usage_gb": usage.round(2),
            "churned": np.where(churned, "yes", "no"),
        }
    )


def _versions() -> list[tuple[str, dict, list[tuple[str, pd.DataFrame, str]]]]:
    cancer = load_breast_cancer(as_frame=True).frame.rename(columns=lambda c: c.replace(" ", "_"))
    cancer["diagnosis"] = np.where(cancer.pop("target") == 1, "benign", "malignant")
    diabetes = load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"})
    broken = churn_frame(1500, seed=3, month=3)
    broken.loc[broken.sample(frac=0.2, random_state=3).index, "tenure_months"] = np.nan
    broken.loc[broken.index[:40], "plan"] = "enterprise"
    broken = broken.drop(columns=["data_usage_gb"])
    return [
        (
            "breast-cancer",
            {"description": "Wisconsin diagnostic breast cancer: cell-nucleus measurements and the diagnosis "
             "(scikit-learn's copy of the UCI data).", "tags": ["health", "real"], "default_target": "diagnosis",
             "rules": {"min_rows": 300, "max_missing_share": {"*": 0.0}}},
            [
                ("breast-cancer-first-400.csv", cancer.iloc[:400], "first 400 cases"),
                ("breast-cancer-all.csv", cancer, "all 569 cases"),
            ],
        ),
        (
            "diabetes-progression",
            {"description": "Disease progression one year after baseline for 442 diabetes patients "
             "(scikit-learn's copy of Efron et al.).", "tags": ["health", "real", "regression"],
             "default_target": "progression", "rules": {"ranges": {"age": {"min": 18, "max": 100}}}},
            [
                ("diabetes-2004.csv", diabetes.iloc[:300], "first cohort"),
                ("diabetes-all.csv", diabetes, "both cohorts"),
            ],
        ),
        (
            "customer-churn",
            {"description": "Monthly customer snapshot with the churn outcome (synthetic, seeded).",
             "tags": ["marketing", "churn"], "default_target": "churned", "rules": CHURN_RULES},
            [
                ("churn-2026-01.csv", churn_frame(4000, seed=1, month=1), "January snapshot"),
                ("churn-2026-02.csv", churn_frame(5000, seed=2, month=2), "February snapshot"),
                ("churn-2026-03.csv", broken, "March export: broken ETL (missing tenure, unknown plan)"),
            ],
        ),
    ]


def seed() -> str:
    User = get_user_model()
    engineer = User.objects.get(username="engineer")
    made = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, meta, versions in _versions():
            dataset = Dataset.objects.filter(name=name).first()
            if dataset is None:
                dataset = dataset_create(
                    user=engineer, name=name, description=meta["description"], tags=meta["tags"],
                    default_target=meta["default_target"],
                )
                with transaction.atomic():
                    Dataset.objects.filter(pk=dataset.pk).update(validation_rules=meta["rules"])
                dataset.refresh_from_db()
            for filename, frame, note in versions:
                path = os.path.join(tmp, filename)
                frame.to_csv(path, index=False)
                _, created = dataset_version_create(
                    user=engineer, dataset=dataset, path=path, original_filename=filename, note=note,
                    source=VersionSource.SEED,
                )
                made += int(created)
    return f"{made} dataset versions created"
