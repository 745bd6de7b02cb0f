import pytest
from django.utils import timezone

from apps.monitoring.models import MonitorPolicy
from tests.conftest import fresh_runtime  # noqa: F401 - tests/e2e/test_maturity_journey.py imports it from here
from tests.factories import (
    DatasetVersionFactory,
    DeploymentFactory,
    ExperimentFactory,
    mixed_frame,
    policy_of,
    production_ready_version,
)


@pytest.fixture
def served(engineer, analyst):
    """A model with a version walked through staging to production and deployed there."""
    data = DatasetVersionFactory(dataset__name="mature-data", dataset__owner=engineer,
                                 frame=mixed_frame(600, seed=41), created_by=engineer)
    experiment = ExperimentFactory(name="mature-exp", dataset=data.dataset, created_by=engineer)
    version = production_ready_version(engineer, analyst, experiment, model_name="mature")
    deployment = DeploymentFactory(model_version=version, deployed_by=analyst)
    policy = policy_of(deployment)
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=50)
    policy.refresh_from_db()
    return {"version": version, "model": version.model, "deployment": deployment, "policy": policy,
            "experiment": experiment, "now": timezone.now()}


def criterion(model, key, at=None):
    from apps.maturity.criteria import evaluate_model

    result = evaluate_model(model, at=at)
    return next(c for c in result.criteria if c["key"] == key)
