"""Journey: engineer requests a promotion, analyst reads the evidence and approves it."""

import pytest

from apps.datasets.models import Dataset
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import model_version_register
from tests.conftest import login
from tests.factories import make_experiment, make_version, mixed_frame, trained_run

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_engineer_requests_and_analyst_approves_with_the_evidence(page, worker, engineer, analyst):
    d = Dataset.objects.create(name="journey-reg", owner=engineer)
    make_version(d, mixed_frame(500, seed=8), engineer)
    experiment = make_experiment(engineer, d, name="journey-reg-exp")
    version = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="journey-model")
    RegisteredModel.objects.filter(pk=version.model_id).update(threshold_value=0.5)

    login(page, "engineer")
    page.goto(f"/models/versions/{version.pk}/")
    page.select_option("select[name=target_stage]", "staging")
    page.fill("input[name=reason]", "best F1 of the experiment so far")
    page.get_by_role("button", name="Request promotion").click()
    page.wait_for_url("**/models/promotions/*/")
    page.wait_for_selector("[data-testid=gates] tr[data-gate=threshold]", timeout=60_000)
    assert "another analyst" not in page.inner_text("[data-testid=decision]")  # engineers only wait
    page.get_by_role("button", name="Log out").click()

    login(page, "analyst")
    assert page.get_by_test_id("pending-count").inner_text() == "1"
    page.goto("/models/promotions/")
    page.click("[data-testid=queue] tbody a >> nth=0")
    page.wait_for_selector("[data-testid=gates]")
    assert page.locator("[data-testid=gates] tbody tr").count() == 5
    assert "Training data validation" in page.content()
    assert page.get_by_test_id("stage-badge").inner_text() == "None"
    page.fill("#decision textarea[name=comment]", "Evidence is convincing; ship to staging.")
    page.get_by_role("button", name="Approve").click()
    page.wait_for_selector("[data-testid=decision-done]")
    page.wait_for_selector("[data-testid=stage-badge][data-stage=staging]")
    assert page.get_by_test_id("stage-badge").inner_text() == "Staging"
    assert ModelVersion.objects.get(pk=version.pk).stage == "staging"
    page.goto(f"/models/{version.model_id}/")
    assert "Evidence is convincing" in page.inner_text("[data-testid=stage-history]")
