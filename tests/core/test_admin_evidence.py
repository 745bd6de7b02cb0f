"""The Django admin cannot delete what is evidence of what happened, not even for a superuser.

Evidence: deployments, prediction logs, promotion requests, stage transitions, drift
reports, alerts, retrainings, jobs, runs that have versions, model versions, dataset
versions used by runs, pipeline changes and audit events. Nor can it delete a parent whose
cascade would take evidence with it. What may go still goes.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from apps.accounts.services import api_token_create
from apps.core.models import AuditEvent, Job
from apps.deployments.models import PredictionLog
from apps.registry.models import StageTransition
from tests.conftest import make_user
from tests.role_matrix_objects import build

EVIDENCE = [
    "deployment", "prediction_log", "promotion", "stage_transition", "report", "alert", "retraining", "job",
    "trained_run", "model_version", "version", "pipeline_change", "audit_event",
]
# lists where some rows may still go (a run without versions, a version no run used)
PARTLY_EVIDENCE = {"trained_run", "version"}
PARENTS_OF_EVIDENCE = ["policy", "registered_model", "experiment", "dataset"]


@pytest.fixture
def objects(viewer, engineer, analyst, admin_user):
    users = {"viewer": viewer, "ml_engineer": engineer, "analyst": analyst, "admin": admin_user}
    built = build(users)
    built["prediction_log"] = PredictionLog.objects.filter(deployment=built["deployment"]).first()
    built["stage_transition"] = StageTransition.objects.first()
    built["trained_run"] = built["model_version"].run
    built["registered_model"] = built["model_version"].model
    built["job"] = Job.objects.filter(pk=built["run"].job_id).first()
    built["audit_event"] = AuditEvent.objects.first()
    assert [name for name in EVIDENCE + PARENTS_OF_EVIDENCE if built[name] is None] == []
    return built


def delete_url(obj) -> str:
    return f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/delete/"


def still_there(obj) -> bool:
    return type(obj).objects.filter(pk=obj.pk).exists()


def test_no_evidence_row_can_be_deleted_through_the_admin(objects, admin_user, client_for):
    client = client_for(admin_user)
    deleted = []
    for name in EVIDENCE:
        obj = objects[name]
        page = client.get(delete_url(obj))
        posted = client.post(delete_url(obj), {"post": "yes"})
        if page.status_code != 403 or posted.status_code != 403 or not still_there(obj):
            deleted.append(f"{name}: GET {page.status_code}, POST {posted.status_code}, kept {still_there(obj)}")
    assert deleted == []


def test_no_list_of_evidence_only_offers_the_delete_action(objects, admin_user, client_for):
    client = client_for(admin_user)
    offered = []
    for name in set(EVIDENCE) - PARTLY_EVIDENCE:
        meta = objects[name]._meta
        response = client.get(f"/admin/{meta.app_label}/{meta.model_name}/")
        assert response.status_code == 200, name
        form = response.context.get("action_form")
        if form is not None and "delete_selected" in dict(form.fields["action"].choices):
            offered.append(name)
    assert offered == []


@pytest.mark.parametrize("name", ["deployment", "trained_run", "version"])
def test_the_bulk_delete_action_posted_anyway_deletes_no_evidence(objects, admin_user, client_for, name):
    obj = objects[name]
    meta = obj._meta
    client_for(admin_user).post(
        f"/admin/{meta.app_label}/{meta.model_name}/",
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert still_there(obj)


@pytest.mark.parametrize("name", PARENTS_OF_EVIDENCE)
def test_a_parent_whose_deletion_would_take_evidence_with_it_cannot_be_deleted(objects, admin_user, client_for, name):
    obj = objects[name]
    response = client_for(admin_user).post(delete_url(obj), {"post": "yes"})
    assert response.status_code in (200, 403)  # the page lists what stands in the way, or a refusal
    assert still_there(obj)


def test_a_run_that_produced_no_version_can_still_be_deleted(objects, admin_user, client_for):
    run = objects["run2"]
    assert not run.model_versions.exists()
    response = client_for(admin_user).post(delete_url(run), {"post": "yes"})
    assert response.status_code == 302
    assert not still_there(run)


def test_a_user_who_acted_is_deactivated_instead_of_deleted(db, admin_user, client_for):
    engineer = make_user("leaver", group="ml_engineer")
    api_token_create(user=engineer, name="ci")  # an audited action
    client = client_for(admin_user)
    assert client.post(delete_url(engineer), {"post": "yes"}).status_code == 403
    response = client.post("/admin/auth/user/", {"action": "deactivate_users", "_selected_action": [engineer.pk]})
    assert response.status_code == 302
    engineer.refresh_from_db()
    assert engineer.is_active is False
    assert AuditEvent.objects.filter(action="user.deactivate", object_id=str(engineer.pk), actor=admin_user).exists()


def test_a_user_who_never_acted_can_be_deleted(db, admin_user, client_for):
    mistake = make_user("typo-account")
    response = client_for(admin_user).post(delete_url(mistake), {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=mistake.pk).exists()
