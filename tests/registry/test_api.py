"""The registry over HTTP: statuses and JSON errors a client can act on."""

from __future__ import annotations

from apps.registry.models import ModelVersion
from tests.factories import evaluated


def post(client, path, body):
    return client.post(path, body, content_type="application/json")


def test_register_request_and_approve_through_the_api(engineer, analyst, client_for, good_run):
    response = post(client_for(engineer), f"/api/v1/runs/{good_run.pk}/register/", {"model_name": "api-model"})
    assert response.status_code == 201
    version = response.json()
    assert (version["version"], version["stage"]) == (1, "none")
    response = post(client_for(engineer), f"/api/v1/model-versions/{version['id']}/promotions/",
                    {"target_stage": "staging", "reason": "first candidate"})
    assert response.status_code == 201
    promotion = response.json()
    assert promotion["status"] == "pending" and promotion["job"]["kind"] == "registry.evaluate_gates"
    from apps.registry.models import PromotionRequest

    evaluated(PromotionRequest.objects.get(pk=promotion["id"]))
    body = client_for(analyst).get(f"/api/v1/promotions/{promotion['id']}/").json()
    assert [g["key"] for g in body["gates"]] == ["threshold", "champion", "signature", "validation", "staging_first"]
    failed = [g for g in body["gates"] if not g["passed"]]
    response = post(client_for(analyst), f"/api/v1/promotions/{promotion['id']}/approve/",
                    {"comment": "good", "override_reason": "accepted in the test" if failed else ""})
    assert response.status_code == 200, response.json()
    assert ModelVersion.objects.get(pk=version["id"]).stage == "staging"
    history = client_for(analyst).get(f"/api/v1/models/{version['model']}/").json()["history"]
    assert history[0]["to"] == "staging" and history[0]["actor"] == "analyst"


def test_api_errors_for_bad_promotions(engineer, analyst, viewer, client_for, good_run):
    from apps.registry.services import model_version_register, promotion_request

    version = model_version_register(user=engineer, run=good_run, model_name="errs")
    response = post(client_for(engineer), f"/api/v1/model-versions/{version.pk}/promotions/",
                    {"target_stage": "moon", "reason": "to the moon"})
    assert response.status_code == 400
    assert "target_stage" in response.json()["error"]["fields"]
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="ok now"))
    for user in (viewer, engineer):
        response = post(client_for(user), f"/api/v1/promotions/{promotion.pk}/approve/", {"comment": "x"})
        assert response.status_code == 403
    response = post(client_for(analyst), f"/api/v1/promotions/{promotion.pk}/reject/", {"comment": "not yet"})
    assert response.status_code == 200
    response = post(client_for(analyst), f"/api/v1/promotions/{promotion.pk}/approve/", {"comment": "changed mind"})
    assert response.status_code == 409
    assert response.json()["error"]["message"].startswith("This request was already rejected")
    response = post(client_for(engineer), f"/api/v1/runs/{good_run.pk}/register/", {"model_name": "errs"})
    assert response.status_code == 409


def test_own_request_approval_is_403_with_the_reason(analyst, engineer, client_for, good_run):
    from django.contrib.auth.models import Group

    from apps.registry.services import model_version_register, promotion_request

    analyst.groups.add(Group.objects.get(name="ml_engineer"))
    version = model_version_register(user=engineer, run=good_run, model_name="own")
    promotion = evaluated(promotion_request(user=analyst, version=version, target_stage="staging", reason="by me"))
    response = post(client_for(analyst), f"/api/v1/promotions/{promotion.pk}/approve/", {"comment": "mine"})
    assert response.status_code == 403
    assert "four-eyes" in response.json()["error"]["message"]


def test_production_at_answers_by_date(engineer, analyst, client_for, good_run):
    from apps.registry.models import RegisteredModel

    response = client_for(analyst).get("/api/v1/models/999/production-at/?at=2026-01-01")
    assert response.status_code == 404
    from apps.registry.services import model_version_register

    version = model_version_register(user=engineer, run=good_run, model_name="dated")
    model = RegisteredModel.objects.get(pk=version.model_id)
    response = client_for(analyst).get(f"/api/v1/models/{model.pk}/production-at/?at=yesterday")
    assert response.status_code == 400 and "at" in response.json()["error"]["fields"]
    response = client_for(analyst).get(f"/api/v1/models/{model.pk}/production-at/?at=2026-01-01")
    assert response.status_code == 200 and response.json()["version"] is None
