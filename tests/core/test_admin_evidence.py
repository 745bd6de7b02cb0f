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


def refusals(client, name: str, obj) -> list[str]:
    """What went wrong when the admin was asked to delete an evidence row three ways."""
    meta = obj._meta
    problems = []
    page = client.get(delete_url(obj))
    if page.status_code != 403:
        problems.append(f"delete page {page.status_code}")
    if client.post(delete_url(obj), {"post": "yes"}).status_code != 403:
        problems.append("delete confirmed")
    changelist = f"/admin/{meta.app_label}/{meta.model_name}/"
    form = client.get(changelist).context.get("action_form")
    if name not in PARTLY_EVIDENCE and form is not None and "delete_selected" in dict(form.fields["action"].choices):
        problems.append("delete action offered")
    client.post(changelist, {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"})
    if not still_there(obj):
        problems.append("deleted")
    return [f"{name}: {problem}" for problem in problems]


# One test per behaviour, each walking every object: the objects take trained models to build.
def test_no_evidence_row_can_be_deleted_through_the_admin(objects, admin_user, client_for):
    client = client_for(admin_user)
    assert [problem for name in EVIDENCE for problem in refusals(client, name, objects[name])] == []


def test_parents_whose_deletion_would_take_evidence_stay_and_what_is_not_evidence_goes(
    objects, admin_user, client_for
):
    client = client_for(admin_user)
    deleted = []
    for name in PARENTS_OF_EVIDENCE:
        response = client.post(delete_url(objects[name]), {"post": "yes"})
        if response.status_code not in (200, 403) or not still_there(objects[name]):
            deleted.append(name)  # 200: the page lists what stands in the way; 403: refused
    assert deleted == []
    run = objects["run2"]
    assert not run.model_versions.exists()
    assert client.post(delete_url(run), {"post": "yes"}).status_code == 302
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
