"""factory_boy factories and small builders shared by the app tests."""

from __future__ import annotations

import os
import tempfile

import factory
import numpy as np
import pandas as pd

from apps.datasets.models import Dataset


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    name = factory.Sequence(lambda n: f"dataset-{n}")
    description = "test data"
    tags = factory.LazyFunction(lambda: ["test"])


def mixed_frame(rows: int = 300, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, rows)
    x2 = rng.uniform(0, 10, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    target = np.where(x1 + rng.normal(0, 0.5, rows) > shift, "yes", "no")
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(3), "color": color, "target": target})


def csv_file(frame: pd.DataFrame) -> str:
    fd, path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    frame.to_csv(path, index=False)
    return path


def make_version(dataset, frame: pd.DataFrame, user, *, profile: bool = True, name: str = "data.csv"):
    """A version created by the real service, profiled in-process by the job's own service."""
    from apps.datasets.services import dataset_version_create, dataset_version_profile

    path = csv_file(frame)
    try:
        version, _ = dataset_version_create(user=user, dataset=dataset, path=path, original_filename=name)
    finally:
        os.unlink(path)
    if profile:
        dataset_version_profile(version=version)
        version.refresh_from_db()
    return version


def train_inline(run):
    """Run a queued run's training job body in this process (the worker tests cover the worker)."""
    from apps.core.jobs import JobContext
    from apps.core.models import Job
    from apps.experiments.services import run_train

    Job.objects.filter(pk=run.job_id).update(status="running")
    run.job.refresh_from_db()
    result = run_train(run=run, ctx=JobContext(run.job))
    Job.objects.filter(pk=run.job_id).update(status="succeeded", progress=100)
    run.refresh_from_db()
    return result


def make_experiment(user, dataset, *, target: str = "target", name: str = "exp", **kwargs):
    from apps.experiments.services import experiment_create

    return experiment_create(user=user, name=name, dataset=dataset, target=target, **kwargs)


def trained_run(user, experiment, algorithm: str = "logistic_regression", params: dict | None = None, version=None):
    from apps.experiments.services import run_launch

    run = run_launch(user=user, experiment=experiment, algorithm=algorithm, params=params or {},
                     dataset_version=version)
    train_inline(run)
    return run


def evaluated(promotion):
    """Run a promotion's gates in this process and mark its job done, as the worker would."""
    from apps.core.models import Job
    from apps.registry.services import promotion_evaluate_gates

    promotion_evaluate_gates(promotion=promotion)
    Job.objects.filter(pk=promotion.job_id).update(status="succeeded", progress=100)
    promotion.refresh_from_db()
    return promotion


def production_ready_version(engineer, analyst, experiment, algorithm="logistic_regression", params=None,
                             model_name="served"):
    """A registered version walked to production through the real approvals (gates overridden if they fail)."""
    from apps.registry.models import RegisteredModel
    from apps.registry.services import model_version_register, promotion_approve, promotion_request

    version = model_version_register(user=engineer, run=trained_run(engineer, experiment, algorithm, params),
                                     model_name=model_name)
    RegisteredModel.objects.filter(pk=version.model_id).update(require_staging_first=False)
    for stage in ("staging", "production"):
        promotion = evaluated(promotion_request(user=engineer, version=version, target_stage=stage, reason="tests"))
        promotion_approve(user=analyst, promotion=promotion, comment="ok",
                          override_reason="accepted in tests" if promotion.failed_gates else "")
    version.refresh_from_db()
    return version
