from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployments.services import predict_and_log, target_of
from tests.factories import (
    DatasetVersionFactory,
    DeploymentFactory,
    ExperimentFactory,
    mixed_frame,
    policy_of,
    production_ready_version,
)


@pytest.fixture
def deployed(engineer, analyst):
    """Model "watched" (fitted on 2,000 rows, approved to production) deployed there by the analyst."""
    data = DatasetVersionFactory(dataset__name="watched-data", dataset__owner=engineer,
                                 frame=mixed_frame(2000, seed=41), created_by=engineer)
    experiment = ExperimentFactory(name="watched-exp", dataset=data.dataset, created_by=engineer)
    version = production_ready_version(engineer, analyst, experiment, model_name="watched")
    return DeploymentFactory(model_version=version, deployed_by=analyst)


@pytest.fixture
def policy(deployed):
    policy = policy_of(deployed)
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
