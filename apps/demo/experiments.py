"""Demo experiments whose runs are really trained by the worker."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.core.models import FINISHED_STATUSES, Job
from apps.datasets.models import Dataset, DatasetVersion
from apps.demo.wait import wait_for
from apps.experiments.models import Experiment, Run, RunSource
from apps.experiments.services import experiment_create, run_launch

EXPERIMENTS = [
    # name, dataset, target, version number, [(algorithm, params)]
    ("churn-prediction", "customer-churn", "churned", 2, [
        ("logistic_regression", {"C": 1.0}),
        ("random_forest_classifier", {"n_estimators": 150, "min_samples_leaf": 2}),
        ("hist_gradient_boosting_classifier", {"learning_rate": 0.1, "max_iter": 150}),
        ("knn_classifier", {"n_neighbors": 15}),
    ]),
    ("cancer-diagnosis", "breast-cancer", "diagnosis", 2, [
        ("logistic_regression", {"C": 0.5}),
        ("random_forest_classifier", {"n_estimators": 200}),
    ]),
    ("diabetes-progression", "diabetes-progression", "progression", 2, [
        ("ridge", {"alpha": 1.0}),
        ("random_forest_regressor", {"n_estimators": 200, "min_samples_leaf": 3}),
        ("hist_gradient_boosting_regressor", {"max_iter": 100}),
    ]),
]


def _versions_ready() -> bool:
    return not DatasetVersion.objects.filter(status="processing").exists()


def seed() -> str:
    engineer = get_user_model().objects.get(username="engineer")
    wait_for(_versions_ready, what="the demo datasets to be profiled")
    launched = 0
    for name, dataset_name, target, number, runs in EXPERIMENTS:
        dataset = Dataset.objects.get(name=dataset_name)
        experiment = Experiment.objects.filter(name=name).first() or experiment_create(
            user=engineer, name=name, dataset=dataset, target=target,
            description=f"Predict {target} from the {dataset_name} data.",
        )
        if experiment.runs.exists():
            continue
        version = dataset.versions.get(number=number)
        for algorithm, params in runs:
            run_launch(user=engineer, experiment=experiment, dataset_version=version, algorithm=algorithm,
                       params=params, source=RunSource.SEED)
            launched += 1
    job_ids = list(Run.objects.filter(job__isnull=False).values_list("job_id", flat=True))
    wait_for(
        lambda: not Job.objects.filter(pk__in=job_ids).exclude(status__in=FINISHED_STATUSES).exists(),
        what="the demo training runs",
    )
    return f"{launched} runs trained"
