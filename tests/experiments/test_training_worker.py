"""Training jobs on the real worker: end to end, and cancelled."""

import pytest

from apps.core.models import Job
from apps.datasets.models import Dataset
from apps.experiments.models import Run
from apps.experiments.services import run_cancel, run_launch
from tests.conftest import wait_until
from tests.factories import make_experiment, make_version, mixed_frame

pytestmark = pytest.mark.worker


def finished(run):
    return Job.objects.get(pk=run.job_id).is_finished


def test_the_worker_trains_a_run_end_to_end(worker, engineer, client_for):
    d = Dataset.objects.create(name="w-shop", owner=engineer)
    make_version(d, mixed_frame(600, seed=1), engineer)
    experiment = make_experiment(engineer, d, name="w-exp")
    response = client_for(engineer).post(
        f"/api/v1/experiments/{experiment.pk}/runs/",
        {"algorithm": "hist_gradient_boosting_classifier", "params": {"max_iter": 30}},
        content_type="application/json",
    )
    assert response.status_code == 202
    run = Run.objects.get(pk=response.json()["id"])
    wait_until(lambda: finished(run), timeout=120, message="training to finish")
    run.refresh_from_db()
    assert run.job.status == "succeeded", run.job.error
    assert 0.5 < run.metrics["accuracy"] <= 1.0
    assert run.artifact_sha256 and run.artifact.size == run.artifact_size
    assert len(run.cv_scores["accuracy"]) == 5
    assert run.log[-1]["message"].startswith("Artifact saved")
    body = client_for(engineer).get(f"/api/v1/runs/{run.pk}/").json()
    assert body["status"] == "succeeded" and body["metrics"] == run.metrics


def test_a_running_run_can_be_cancelled_and_leaves_no_artifact(worker, engineer):
    d = Dataset.objects.create(name="w-big", owner=engineer)
    make_version(d, mixed_frame(20_000, seed=2), engineer)
    experiment = make_experiment(engineer, d, name="w-cancel")
    run = run_launch(user=engineer, experiment=experiment, algorithm="random_forest_classifier",
                     params={"n_estimators": 400})
    wait_until(lambda: Job.objects.get(pk=run.job_id).status == "running", timeout=60, message="the run to start")
    run_cancel(user=engineer, run=run)
    wait_until(lambda: finished(run), timeout=120, message="the run to stop")
    run.refresh_from_db()
    assert run.job.status == "cancelled"
    assert not run.artifact and not run.metrics
