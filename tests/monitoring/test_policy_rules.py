"""The monitor policy's rules: its form, who may change what, the model's validation, one
unfinished retraining per policy, and which predictions a drift check judges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.models import AuditEvent, Job
from apps.deployments.models import Environment, PredictionSource
from apps.deployments.services import environments_ensure, predict_and_log, target_of
from apps.monitoring.models import Alert, DriftReport, MonitorPolicy, Retraining
from apps.monitoring.services import (
    check_request,
    drift_check,
    policy_update,
    retraining_start,
    schedule_due_checks,
)
from apps.registry.models import RegisteredModel
from tests.factories import mixed_frame
from tests.monitoring.conftest import deployed, send  # noqa: F401 - deployed is a fixture


@pytest.fixture
def watched(db):
    """A policy with no deployment behind it: enough for rules about the policy itself."""
    environments_ensure()
    model = RegisteredModel.objects.create(name="ruled", task_type="classification", primary_metric="f1",
                                           threshold_metric="f1", threshold_value=0.5)
    return MonitorPolicy.objects.create(model=model, environment=Environment.objects.get(name="production"))


def form_data(policy: MonitorPolicy, **changes) -> dict:
    data = {
        "enabled": "on", "schedule_minutes": "30", "window_hours": "12", "window_predictions": "", "min_rows": "50",
        "numeric_method": "auto", "numeric_threshold": "", "categorical_method": "auto", "categorical_threshold": "",
        "drift_share": "0.4", "alert_emails": "oncall@example.com", "webhook_url": policy.webhook_url,
        "retrain_policy": "on_schedule", "retrain_every_days": "7", "performance_metric": "",
        "performance_threshold": "", "include_production_rows": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post_settings(client, policy, **changes):
    return client.post(f"/monitoring/{policy.pk}/settings/", form_data(policy, **changes))


def test_the_settings_form_saves_valid_settings_with_an_audit_event(watched, engineer, client_for):
    response = post_settings(client_for(engineer), watched)
    assert response.status_code == 302
    watched.refresh_from_db()
    assert (watched.schedule_minutes, watched.window_hours, watched.drift_share) == (30, 12, 0.4)
    assert watched.retrain_every_days == 7 and watched.include_interactive is False
    event = AuditEvent.objects.get(action="monitor_policy.update")
    assert event.actor == engineer and event.before["schedule_minutes"] == 60 and event.after["schedule_minutes"] == 30


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"retrain_every_days": "0"}, "retrain_every_days", "greater than or equal to 1"),
        ({"schedule_minutes": "0"}, "schedule_minutes", "greater than or equal to 1"),
        ({"drift_share": "1.5"}, "drift_share", "between 0 (exclusive) and 1"),
        ({"drift_share": "nan"}, "drift_share", "Enter a number"),
        ({"numeric_threshold": "inf"}, "numeric_threshold", "Enter a number"),
        ({"retrain_policy": "on_performance"}, "performance_threshold", "needs a threshold"),
        ({"alert_emails": "oncall@example.com, not-an-address"}, "alert_emails", "not-an-address"),
        ({"performance_metric": "wisdom"}, "performance_metric", "Unknown metric"),
        ({"numeric_method": "astrology"}, "numeric_method", "Select a valid choice"),
        ({"window_hours": "ten"}, "window_hours", "Enter a whole number"),
    ],
)
def test_a_bad_setting_is_a_400_naming_the_field_and_nothing_changes(watched, engineer, client_for, changes, field,
                                                                     message):
    response = post_settings(client_for(engineer), watched, **changes)
    assert response.status_code == 400
    text = response.content.decode()
    assert f'data-field="{field}"' in text and message in text, text[text.find("error"):][:600]
    watched.refresh_from_db()
    assert watched.schedule_minutes == 60 and not AuditEvent.objects.filter(action="monitor_policy.update").exists()


def test_the_model_refuses_a_retraining_period_under_a_day(watched):
    watched.retrain_every_days = 0
    with pytest.raises(ValidationError) as info:
        watched.full_clean()
    assert "retrain_every_days" in info.value.message_dict


def test_an_engineer_neither_sees_nor_sets_the_webhook_url(watched, engineer, client_for):
    client = client_for(engineer)
    page = client.get(f"/monitoring/{watched.pk}/settings/")
    assert page.status_code == 200
    assert b'name="webhook_url"' not in page.content and b'data-testid="webhook-admin-only"' in page.content
    response = post_settings(client, watched, webhook_url="https://attacker.example/x")
    assert response.status_code == 302
    watched.refresh_from_db()
    assert watched.webhook_url == "" and watched.schedule_minutes == 30
    with pytest.raises(PermissionDenied, match="Only admins set webhook URLs"):
        policy_update(user=engineer, policy=watched, values={"webhook_url": "https://attacker.example/x"})


def test_an_admin_sets_an_https_webhook_url(watched, admin_user, client_for):
    response = post_settings(client_for(admin_user), watched, webhook_url="https://hooks.example.com/t/123")
    assert response.status_code == 302
    watched.refresh_from_db()
    assert watched.webhook_url == "https://hooks.example.com/t/123"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "Webhooks must use https."),
        ("https://127.0.0.1:8000/x", "loopback"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://user:secret@hooks.example.com/x", "no user name or password"),
        ("ftp://hooks.example.com/x", "Webhooks use https."),
    ],
)
def test_an_admin_cannot_save_a_webhook_url_that_would_be_refused(watched, admin_user, client_for, url, message):
    response = post_settings(client_for(admin_user), watched, webhook_url=url)
    assert response.status_code == 400 and message in response.content.decode()
    watched.refresh_from_db()
    assert watched.webhook_url == ""


def test_plain_http_is_accepted_when_the_admin_setting_allows_it(watched, admin_user, client_for, settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    response = post_settings(client_for(admin_user), watched, webhook_url="http://hooks.example.com/x")
    assert response.status_code == 302


@pytest.mark.parametrize("valid", [True, False])
def test_a_viewer_gets_403_from_the_settings_page_whatever_it_posts(watched, viewer, analyst, client_for, valid):
    changes = {} if valid else {"retrain_every_days": "0"}
    for user in (viewer, analyst):
        client = client_for(user)
        assert client.get(f"/monitoring/{watched.pk}/settings/").status_code == 403
        assert post_settings(client, watched, **changes).status_code == 403
    watched.refresh_from_db()
    assert watched.schedule_minutes == 60


def test_a_viewer_cannot_request_a_check(watched, viewer):
    with pytest.raises(PermissionDenied):
        check_request(user=viewer, policy=watched)


def test_an_alert_resolves_itself_from_the_report_that_found_things_normal(watched):
    now = timezone.now()
    opened = DriftReport.objects.create(policy=watched, window_start=now - timedelta(hours=2),
                                        window_end=now - timedelta(hours=1), rows=10, status="drifting")
    calm = DriftReport.objects.create(policy=watched, window_start=now - timedelta(hours=1), window_end=now, rows=10,
                                      status="ok")
    alert = Alert.objects.create(policy=watched, kind="drift", message="m", opened_at=opened.window_end,
                                 opened_by=opened)
    alert.resolve(report=calm)
    alert.refresh_from_db()
    assert (alert.status, alert.resolved_at, alert.resolved_by) == ("resolved", now, calm)


def test_the_database_holds_at_most_one_unfinished_retraining_per_policy(watched):
    Retraining.objects.create(policy=watched, trigger="manual", status="training")
    Retraining.objects.create(policy=watched, trigger="manual", status="failed")
    with pytest.raises(IntegrityError), transaction.atomic():
        Retraining.objects.create(policy=watched, trigger="manual", status="started")


def test_a_second_retraining_waits_until_the_first_has_ended(watched):
    first = retraining_start(policy=watched, trigger="schedule")
    assert first is not None and first.status == "started"
    assert retraining_start(policy=watched, trigger="schedule") is None
    Job.objects.filter(pk=first.job_id).update(status="failed", error="worker lost")
    second = retraining_start(policy=watched, trigger="schedule")
    assert second is not None
    first.refresh_from_db()
    assert first.status == "failed" and first.error == "worker lost"


def test_a_retraining_row_that_never_got_its_job_does_not_block_the_next(watched):
    Retraining.objects.create(policy=watched, trigger="manual")
    assert retraining_start(policy=watched, trigger="manual") is not None
    assert Retraining.objects.filter(status="failed", error="The retraining was never queued.").count() == 1


def test_the_scheduler_starts_one_retraining_however_often_it_ticks(deployed, engineer, client_for):  # noqa: F811
    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    # a row saved before the rule: zero days used to start a retraining on every tick
    MonitorPolicy.objects.filter(pk=policy.pk).update(retrain_policy="on_schedule", retrain_every_days=0)
    now = timezone.now()
    for minute in range(3):
        schedule_due_checks(now=now + timedelta(minutes=minute))
    assert Retraining.objects.filter(policy=policy).count() == 1
    response = client_for(engineer).post(f"/monitoring/{policy.pk}/retrain/", follow=True)
    assert b"is still running; wait for it to finish" in response.content
    assert Retraining.objects.filter(policy=policy).count() == 1
    Retraining.objects.filter(policy=policy).update(status="awaiting approval", finished_at=now)
    schedule_due_checks(now=now + timedelta(hours=1))
    assert Retraining.objects.filter(policy=policy).count() == 1, "the period is still at least a day"
    schedule_due_checks(now=now + timedelta(days=1, minutes=1))
    assert Retraining.objects.filter(policy=policy).count() == 2


def test_a_viewer_cannot_retrain(deployed, viewer, client_for):  # noqa: F811
    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    assert client_for(viewer).post(f"/monitoring/{policy.pk}/retrain/").status_code == 403
    assert not Retraining.objects.exists()


def test_try_it_predictions_are_left_out_of_drift_unless_the_policy_includes_them(deployed):  # noqa: F811
    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    policy.min_rows = 50
    policy.save()
    when = timezone.now() - timedelta(hours=2)
    frame = mixed_frame(300, seed=9, shift=3.0)
    predict_and_log(target=target_of(deployed), instances=frame[["x1", "x2", "color"]].to_dict("records"),
                    now=when, source=PredictionSource.INTERACTIVE)
    window = send(deployed, hours_ago=2, rows=1000, seed=1, labels=False)
    start, end = when - timedelta(minutes=5), window[1]
    report = drift_check(policy=policy, window_start=start, window_end=end)
    assert report.rows == 1000 and "x1" not in report.drifted_features
    policy.include_interactive = True
    policy.save()
    report = drift_check(policy=policy, window_start=start, window_end=end)
    assert report.rows == 1300 and "x1" in report.drifted_features
