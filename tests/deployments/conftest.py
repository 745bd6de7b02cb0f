import pytest

from apps.datasets.models import Dataset
from apps.deployments.models import Environment
from apps.deployments.services import environments_ensure
from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version


@pytest.fixture(autouse=True)
def environments(db):
    environments_ensure()
    return {e.name: e for e in Environment.objects.all()}


@pytest.fixture(autouse=True)
def fresh_runtime():
    from apps.deployments import runtime

    runtime.forget()
    yield
    runtime.forget()


@pytest.fixture
def experiment(engineer, settings, tmp_path):
    d = Dataset.objects.create(name="served-data", owner=engineer)
    frame = mixed_frame(400, seed=31)
    frame.loc[::17, "x2"] = None  # training data with gaps: x2 is nullable in the signature
    make_version(d, frame, engineer)
    return make_experiment(engineer, d, name="served-exp")


@pytest.fixture
def prod_version(engineer, analyst, experiment):
    return production_ready_version(engineer, analyst, experiment)


@pytest.fixture
def second_version(engineer, analyst, experiment, prod_version):
    return production_ready_version(engineer, analyst, experiment, "random_forest_classifier",
                                    {"n_estimators": 25})
