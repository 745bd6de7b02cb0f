import pytest

from tests.factories import FittedRunFactory


@pytest.fixture
def good_run(engineer, experiment):
    """A finished logistic regression with a real artifact (fitted, not trained)."""
    return FittedRunFactory(created_by=engineer, experiment=experiment, algorithm="logistic_regression")


@pytest.fixture
def other_run(engineer, experiment):
    return FittedRunFactory(created_by=engineer, experiment=experiment, algorithm="random_forest_classifier",
                            params={"n_estimators": 30})
