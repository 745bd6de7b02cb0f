"""Journey: an engineer launches a run from the form, watches it, opens its charts."""

import pytest

from apps.datasets.models import Dataset
from tests.conftest import login
from tests.factories import make_experiment, make_version, mixed_frame

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_engineer_launches_a_run_and_opens_its_charts(page, worker, engineer):
    d = Dataset.objects.create(name="journey-shop", owner=engineer)
    make_version(d, mixed_frame(800, seed=3), engineer)
    experiment = make_experiment(engineer, d, name="journey-exp")
    login(page, "engineer")
    page.goto(f"/experiments/{experiment.pk}/")
    page.select_option("select[name=algorithm]", "random_forest_classifier")
    page.wait_for_selector("input[name=param_n_estimators]")
    page.fill("input[name=param_n_estimators]", "40")
    page.get_by_role("button", name="Launch run").click()
    page.wait_for_selector("[data-testid=runs-table] tr[data-run='1']")
    page.wait_for_selector("tr[data-run='1'] [data-testid=run-status] .badge-ok", timeout=90_000)
    page.click("tr[data-run='1'] a")
    page.wait_for_selector("#confusion-chart svg.main-svg")
    page.wait_for_selector("#roc-chart svg.main-svg")
    page.wait_for_selector("#importance-chart svg.main-svg")
    assert page.locator("[data-testid=metrics-table] td[data-metric=accuracy]").inner_text() != "–"
