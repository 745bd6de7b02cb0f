import pytest
from django.utils import timezone

from apps.datasets.models import Dataset
from apps.deployments.models import Environment
from apps.deployments.services import deployment_create, environments_ensure
from apps.monitoring.models import MonitorPolicy
from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version


@pytest.fixture(autouse=True)
def fresh_runtime():
    from apps.deployments import runtime

    runtime.forget()
    yield


@pytest.fixture
def served(engineer, analyst):
    """A model with a version walked through staging to production and deployed there."""
    environments_ensure()
    d = Dataset.objects.create(name="mature-data", owner=engineer)
    make_version(d, mixed_frame(600, seed=41), engineer)
    experiment = make_experiment(engineer, d, name="mature-exp")
    version = production_ready_version(engineer, analyst, experiment, model_name="mature")
    deployment = deployment_create(user=analyst, version=version, environment=Environment.objects.get(name="production"))
    policy = MonitorPolicy.objects.get(model=deployment.model, environment=deployment.environment)
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=50)
    policy.refresh_from_db()
    return {"version": version, "model": version.model, "deployment": deployment, "policy": policy,
            "experiment": experiment, "now": timezone.now()}


def criterion(model, key, at=None):
    from apps.maturity.criteria import evaluate_model

    result = evaluate_model(model, at=at)
    return next(c for c in result.criteria if c["key"] == key)
