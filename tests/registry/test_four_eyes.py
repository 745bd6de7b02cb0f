"""The four-eyes rule for everyone whose action shaped a request, not only its requester.

Every path is tried by a user who holds both the ml_engineer and the analyst role: they are
refused with the reason (403 on the API, no decision form on the page), they are neither emailed
nor counted in the navigation's pending count, and another analyst approves.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.utils import timezone

from apps.core.jobs import JobContext
from apps.core.models import Job
from apps.core.roles import ANALYST
from apps.deployments.models import Environment, PredictionLog
from apps.deployments.services import (
    deployment_create,
    environments_ensure,
    feedback_attach,
    predict_and_log,
    target_of,
)
from apps.experiments.models import Run
from apps.maturity.services import pipeline_change_create
from apps.monitoring.models import MonitorPolicy
from apps.monitoring.services import policy_update, retraining_prepare, retraining_start, schedule_due_checks
from apps.registry.models import ModelVersion, PromotionRequest
from apps.registry.services import (
    model_version_register,
    pending_count_for,
    promotion_approve,
    promotion_reject,
    promotion_request,
)
from tests.conftest import make_user
from tests.factories import evaluated, mixed_frame, production_ready_version, train_inline, trained_run


@pytest.fixture(autouse=True)
def _forget_loaded_models():
    from apps.deployments import runtime

    runtime.forget()
    yield


@pytest.fixture
def both(db):
    """An ML engineer who is also an analyst."""
    user = make_user("both", group="ml_engineer")
    user.groups.add(Group.objects.get(name=ANALYST))
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def served(engineer, analyst, experiment):
    """buyers-model in production, deployed, with its production monitor policy."""
    environments_ensure()
    version = production_ready_version(engineer, analyst, experiment, model_name="buyers-model")
    production = Environment.objects.get(name="production")
    deployment = deployment_create(user=analyst, version=version, environment=production)
    return {"deployment": deployment, "policy": MonitorPolicy.objects.get(model=version.model, environment=production)}


def _traffic(deployment, *, rows: int = 60, seed: int = 5, hours_ago: float = 0) -> list[dict]:
    """Predictions through the real predict-and-log path, with the truth to send back later."""
    frame = mixed_frame(rows, seed=seed)
    body = predict_and_log(target=target_of(deployment), instances=frame[["x1", "x2", "color"]].to_dict("records"),
                           now=timezone.now() - timedelta(hours=hours_ago), source="test")
    return [{"request_id": r, "label": y} for r, y in zip(body["request_ids"], frame["target"], strict=True)]


def _retrained(retraining, capture) -> PromotionRequest:
    """Run the retraining's job body and its training run here, as the worker would; the request it opens."""
    Job.objects.filter(pk=retraining.job_id).update(status="running")
    retraining_prepare(retraining=retraining, ctx=JobContext(Job.objects.get(pk=retraining.job_id)))
    retraining.refresh_from_db()
    mail.outbox.clear()
    with capture(execute=True):  # run_trained: the retraining registers the version and requests it
        train_inline(retraining.run)
    retraining.refresh_from_db()
    return retraining.promotion


def _refused_then_approved_by_another(promotion, *, dual, colleague, client_for, because: str) -> None:
    promotion = evaluated(promotion)
    assert promotion.is_own(dual) and not promotion.is_own(colleague)
    sent = [m for m in mail.outbox if "Approval requested" in m.subject]
    assert sent and dual.email not in sent[-1].to and colleague.email in sent[-1].to
    assert pending_count_for(dual) == 0 and pending_count_for(colleague) == 1
    override = "accepted in the four-eyes tests" if promotion.failed_gates else ""
    response = client_for(dual).post(f"/api/v1/promotions/{promotion.pk}/approve/",
                                     {"comment": "looks fine to me", "override_reason": override},
                                     content_type="application/json")
    assert response.status_code == 403, response.content
    message = response.json()["error"]["message"]
    assert because in message and "four-eyes" in message
    page = client_for(dual).get(promotion.get_absolute_url())
    assert because.encode() in page.content and b'name="comment"' not in page.content
    promotion.refresh_from_db()
    assert promotion.status == "pending"
    promotion_approve(user=colleague, promotion=promotion, comment="checked by a second pair of eyes",
                      override_reason=override)
    promotion.refresh_from_db()
    assert promotion.status == "approved" and promotion.decided_by == colleague


def test_the_author_of_the_versions_run_cannot_approve_a_colleagues_request(
    both, engineer, analyst, experiment, client_for, django_capture_on_commit_callbacks
):
    version = model_version_register(user=engineer, run=trained_run(both, experiment), model_name="buyers-model")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        promotion = promotion_request(user=engineer, version=version, target_stage="staging", reason="their run")
    assert promotion.requested_by == engineer and promotion.on_behalf_of is None
    _refused_then_approved_by_another(promotion, dual=both, colleague=analyst, client_for=client_for,
                                      because="You launched the training run of buyers-model v1")


def test_the_author_of_a_ci_change_cannot_approve_when_a_colleague_requests_it_again(
    both, engineer, analyst, experiment, client_for, django_capture_on_commit_callbacks
):
    first = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="buyers-model")
    change = pipeline_change_create(user=both, model=first.model, source_commit="c0ffee",
                                    spec={"algorithm": "logistic_regression"})
    with django_capture_on_commit_callbacks(execute=True):  # run_trained: the change registers and asks for staging
        train_inline(Run.objects.get(pk=change.run_id))
    change.refresh_from_db()
    staging = evaluated(change.staging_promotion)
    assert staging.requested_by == both
    promotion_reject(user=analyst, promotion=staging, comment="not now")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        again = promotion_request(user=engineer, version=ModelVersion.objects.get(pk=change.model_version_id),
                                  target_stage="staging", reason="asking again for the CI change")
    assert again.requested_by == engineer
    _refused_then_approved_by_another(again, dual=both, colleague=analyst, client_for=client_for,
                                      because="You sent the CI change that trained buyers-model v2")


def test_whoever_last_changed_the_monitor_policy_cannot_approve_the_retraining_it_scheduled(
    both, analyst, served, client_for, django_capture_on_commit_callbacks
):
    policy = served["policy"]
    policy_update(user=both, policy=policy, values={"retrain_policy": "on_schedule", "retrain_every_days": 1})
    assert schedule_due_checks()["retrainings"] == [policy.pk]  # the beat, not a person, starts it
    retraining = policy.retrainings.get()
    assert retraining.trigger == "schedule" and retraining.job.created_by is None
    promotion = _retrained(retraining, django_capture_on_commit_callbacks)
    assert promotion.requested_by.username == "mlops-system" and promotion.on_behalf_of is None
    _refused_then_approved_by_another(promotion, dual=both, colleague=analyst, client_for=client_for,
                                      because="You last changed the monitor policy")


def test_whoever_attached_labels_in_the_training_window_cannot_approve_the_retraining(
    both, engineer, analyst, served, client_for, django_capture_on_commit_callbacks
):
    labels = _traffic(served["deployment"])
    response = client_for(both).post("/api/v1/feedback/", {"items": labels}, content_type="application/json")
    assert response.status_code == 200, response.content
    assert PredictionLog.objects.filter(labelled_by=both).count() == len(labels)
    retraining = retraining_start(policy=served["policy"], trigger="manual", user=engineer)
    promotion = _retrained(retraining, django_capture_on_commit_callbacks)
    assert retraining.production_rows == len(labels) and promotion.on_behalf_of == engineer
    _refused_then_approved_by_another(promotion, dual=both, colleague=analyst, client_for=client_for,
                                      because="You attached labels")


def test_labels_outside_the_training_window_do_not_make_their_author_an_owner(
    both, analyst2, engineer, served, django_capture_on_commit_callbacks
):
    feedback_attach(user=both, items=_traffic(served["deployment"], seed=6, hours_ago=30))
    labels = _traffic(served["deployment"], seed=7, hours_ago=1)
    feedback_attach(user=analyst2, items=labels)
    now = timezone.now()
    retraining = retraining_start(policy=served["policy"], trigger="drift", window_start=now - timedelta(hours=24),
                                  window_end=now)
    promotion = _retrained(retraining, django_capture_on_commit_callbacks)
    assert retraining.production_rows == len(labels)
    assert promotion.is_own(analyst2) and not promotion.is_own(both)


def test_whoever_started_a_retraining_by_hand_cannot_approve_what_it_produced(
    both, analyst, served, client_for, django_capture_on_commit_callbacks
):
    response = client_for(both).post(f"/monitoring/{served['policy'].pk}/retrain/")
    assert response.status_code == 302
    retraining = served["policy"].retrainings.get()
    promotion = _retrained(retraining, django_capture_on_commit_callbacks)
    assert promotion.on_behalf_of == both
    _refused_then_approved_by_another(promotion, dual=both, colleague=analyst, client_for=client_for,
                                      because="The automation opened this request after your own action")


def test_the_request_pages_name_everyone_who_cannot_decide_it(
    both, engineer, analyst, experiment, client_for
):
    version = model_version_register(user=engineer, run=trained_run(both, experiment), model_name="buyers-model")
    promotion = promotion_request(user=engineer, version=version, target_stage="staging", reason="their run")
    for url in ("/models/promotions/", version.get_absolute_url()):
        text = client_for(analyst).get(url).content.decode()
        assert "by engineer for <span" in text and ">both</span>" in text, url
    text = client_for(analyst).get(promotion.get_absolute_url()).content.decode()
    assert "<strong>both</strong> (launched the training run of the version)" in text
