"""The deploy page's form, and one permission rule per action, checked by its service."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied

from apps.deployments.models import Deployment, DeploymentStatus
from apps.deployments.services import batch_create, deployment_create, deployment_rollback


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_deploy_page_posts_through_its_form(client_for, analyst, prod_version, environments):
    response = client_for(analyst).post("/deployments/deploy/", {
        "model_version": prod_version.pk, "environment": environments["production"].pk, "note": "  first  "})
    deployment = Deployment.objects.get()
    assert response.status_code == 302 and response.url == deployment.get_absolute_url()
    assert deployment.note == "first" and deployment.deployed_by == analyst


@pytest.mark.parametrize("data", [{}, {"model_version": "999999", "environment": "1"},
                                  {"model_version": "x", "environment": "x"}])
def test_a_bad_deploy_form_is_sent_back_with_its_message(client_for, analyst, prod_version, data):
    response = client_for(analyst).post("/deployments/deploy/", data)
    assert response.status_code == 302 and response.url == "/deployments/"
    assert _messages(response) == ["Choose a model version and an environment."]
    assert not Deployment.objects.exists()


def test_a_note_too_long_is_sent_back_with_its_message(client_for, analyst, prod_version, environments):
    response = client_for(analyst).post("/deployments/deploy/", {
        "model_version": prod_version.pk, "environment": environments["production"].pk, "note": "n" * 301})
    assert "at most 300 characters" in " ".join(_messages(response)) and not Deployment.objects.exists()


def test_the_service_refuses_a_deploy_the_role_does_not_allow(client_for, viewer, engineer, prod_version,
                                                              environments):
    production = {"model_version": prod_version.pk, "environment": environments["production"].pk}
    assert client_for(viewer).post("/deployments/deploy/", production).status_code == 403
    assert client_for(engineer).post("/deployments/deploy/", production).status_code == 403
    assert not Deployment.objects.exists()
    staging = dict(production, environment=environments["staging"].pk)
    assert client_for(engineer).post("/deployments/deploy/", staging).status_code == 302
    assert Deployment.objects.get().environment == environments["staging"]


def test_the_api_deploy_is_refused_by_the_service_too(client_for, engineer, prod_version):
    response = client_for(engineer).post("/api/v1/deployments/", {"model_version": prod_version.pk,
                                                                  "environment": "production"},
                                         content_type="application/json")
    assert response.status_code == 403 and not Deployment.objects.exists()


def test_the_production_right_is_one_rule_on_the_environment(viewer, engineer, analyst, environments):
    production, staging = environments["production"], environments["staging"]
    assert (production.deploy_capability, staging.deploy_capability) == ("deploy_production", "deploy_nonproduction")
    assert [production.allows_deploy_by(u) for u in (viewer, engineer, analyst)] == [False, False, True]
    assert [staging.allows_deploy_by(u) for u in (viewer, engineer, analyst)] == [False, True, True]
    assert [production.allows_batch_scoring_by(u) for u in (viewer, engineer, analyst)] == [False, False, True]
    assert [staging.allows_batch_scoring_by(u) for u in (viewer, engineer, analyst)] == [False, True, True]


def test_rollback_and_batch_scoring_in_production_need_the_production_right(engineer, analyst, prod_version,
                                                                           environments):
    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    with pytest.raises(PermissionDenied, match="cannot roll back production"):
        deployment_rollback(user=engineer, deployment=deployment)
    with pytest.raises(PermissionDenied, match="cannot run batch scoring in production"):
        batch_create(user=engineer, deployment=deployment, uploaded=None)


def test_retiring_a_deployment_records_who_and_when(analyst, prod_version, environments):
    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    deployment.retire(by=analyst)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.RETIRED and not deployment.is_active
    assert deployment.retired_by == analyst and deployment.retired_at is not None


def test_the_deployment_page_never_loads_the_model_it_shows(client_for, viewer, analyst, prod_version, environments):
    from apps.deployments import runtime

    deployment = deployment_create(user=analyst, version=prod_version, environment=environments["production"])
    page = client_for(viewer).get(deployment.get_absolute_url())
    assert page.status_code == 200 and b'data-testid="warming"' in page.content
    assert runtime.loaded_versions() == []  # the page read what the process holds, and loaded nothing

    runtime.get_loaded(prod_version)  # what the warmer or the first prediction does
    page = client_for(viewer).get(deployment.get_absolute_url())
    assert b'data-testid="warming"' not in page.content and b"verified" in page.content
