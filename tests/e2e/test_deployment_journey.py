"""Journey: an analyst deploys an approved version, tries it in the browser, rolls back."""

import json

import pytest

from apps.datasets.models import Dataset
from apps.deployments.models import Deployment, Environment
from apps.deployments.services import deployment_create, environments_ensure
from tests.conftest import login
from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version

pytestmark = pytest.mark.browser


def test_deploy_try_it_and_roll_back(page, engineer, analyst):
    environments_ensure()
    d = Dataset.objects.create(name="journey-serve", owner=engineer)
    make_version(d, mixed_frame(400, seed=4), engineer)
    experiment = make_experiment(engineer, d, name="journey-serve-exp")
    first = production_ready_version(engineer, analyst, experiment, model_name="journey-served")
    production = Environment.objects.get(name="production")
    deployment_create(user=analyst, version=first, environment=production)
    second = production_ready_version(engineer, analyst, experiment, "random_forest_classifier", {"n_estimators": 20},
                                      model_name="journey-served")

    login(page, "analyst")
    page.goto("/deployments/")
    page.select_option("[data-testid=deploy-form] select[name=model_version]", str(second.pk))
    page.select_option("[data-testid=deploy-form] select[name=environment]", str(production.pk))
    page.get_by_role("button", name="Deploy").click()
    page.wait_for_selector("[data-testid=serving-version]")
    assert page.get_by_test_id("serving-version").inner_text() == "journey-served v2"

    page.fill("#try-it input[name=x1]", "0.7")
    page.fill("#try-it input[name=x2]", "3.2")
    page.select_option("#try-it select[name=color]", "blue")
    page.get_by_role("button", name="Predict").click()
    page.wait_for_selector("[data-testid=try-it-result][data-done='1']")
    answer = json.loads(page.get_by_test_id("try-it-result").inner_text())
    assert answer["version"] == 2 and answer["predictions"][0] in ("yes", "no")

    page.reload()
    assert answer["request_ids"][0] in page.inner_text("[data-testid=recent]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.fill("[data-testid=rollback-form] input[name=reason]", "v2 misbehaves")
    page.get_by_role("button", name="Roll back to v1").click()
    page.wait_for_selector("text=serves production again")
    assert page.get_by_test_id("serving-version").inner_text() == "journey-served v1"
    active = Deployment.objects.get(status="active", model__name="journey-served")
    assert active.model_version == first and active.is_rollback
