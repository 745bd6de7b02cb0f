import pytest

from apps.datasets.models import Dataset
from tests.factories import make_experiment, make_version, mixed_frame, trained_run


@pytest.fixture(autouse=True)
def media(request, settings, tmp_path):
    # Transactional tests share files with the session's worker, which reads the default MEDIA_ROOT.
    if "transactional_db" not in request.fixturenames:
        settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def experiment(engineer):
    d = Dataset.objects.create(name="buyers-data", owner=engineer)
    make_version(d, mixed_frame(400, seed=21), engineer)
    return make_experiment(engineer, d, name="buyers")


@pytest.fixture
def good_run(engineer, experiment):
    return trained_run(engineer, experiment, "logistic_regression")


@pytest.fixture
def other_run(engineer, experiment):
    return trained_run(engineer, experiment, "random_forest_classifier", {"n_estimators": 30})
