from datetime import timedelta

import pytest
from django.utils import timezone

from apps.datasets.models import Dataset
from apps.deployments.models import Environment
from apps.deployments.services import deployment_create, environments_ensure, predict_and_log, target_of
from apps.monitoring.models import MonitorPolicy
from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version


@pytest.fixture(autouse=True)
def fresh_runtime():
    from apps.deployments import runtime

    runtime.forget()
    yield


@pytest.fixture
def deployed(engineer, analyst):
    environments_ensure()
    d = Dataset.objects.create(name="watched-data", owner=engineer)
    make_version(d, mixed_frame(2000, seed=41), engineer)
    experiment = make_experiment(engineer, d, name="watched-exp")
    version = production_ready_version(engineer, analyst, experiment, model_name="watched")
    return deployment_create(user=analyst, version=version, environment=Environment.objects.get(name="production"))


@pytest.fixture
def policy(deployed):
    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    policy.min_rows = 50
    policy.save()
    return policy


def send(deployment, *, hours_ago: float, rows: int = 1000, shift: float = 0.0, seed: int = 0, labels=True, analyst=None):
    """Traffic through the real predict-and-log path, back-dated; returns the window (start, end)."""
    from apps.deployments.services import feedback_attach

    frame = mixed_frame(rows, seed=seed, shift=shift)
    when = timezone.now() - timedelta(hours=hours_ago)
    body = predict_and_log(target=target_of(deployment), instances=frame[["x1", "x2", "color"]].to_dict("records"),
                           now=when, source="test")
    if labels and analyst is not None:
        feedback_attach(user=analyst, items=[{"request_id": r, "label": y}
                                             for r, y in zip(body["request_ids"], frame["target"], strict=True)])
    return when - timedelta(minutes=1), when + timedelta(minutes=1)
