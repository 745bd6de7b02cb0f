import pytest

from tests.factories import production_ready_version


@pytest.fixture
def prod_version(engineer, analyst, experiment):
    """Version 1 of "served", fitted (not trained) and approved to production by the analyst."""
    return production_ready_version(engineer, analyst, experiment)


@pytest.fixture
def second_version(engineer, analyst, experiment, prod_version):
    """A random forest approved to production after ``prod_version`` (which it archives)."""
    return production_ready_version(engineer, analyst, experiment, "random_forest_classifier",
                                    {"n_estimators": 25})
