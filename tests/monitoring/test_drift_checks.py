"""Drift checks over logged traffic, alert episodes, and the retraining loop."""

from __future__ import annotations

import pytest
from django.core import mail

from apps.core.models import Job
from apps.monitoring.models import Alert, Retraining
from apps.monitoring.services import alert_notify, drift_check, retraining_prepare
from tests.monitoring.conftest import send


def check(policy, window):
    return drift_check(policy=policy, window_start=window[0], window_end=window[1])


def test_unshifted_traffic_is_ok_and_shifted_traffic_drifts(policy, deployed, analyst):
    calm = send(deployed, hours_ago=48, seed=1, analyst=analyst)
    report = check(policy, calm)
    assert report.status == "ok", report.features
    assert report.rows == 1000 and report.dataset_drift is False
    x1 = next(f for f in report.features if f["name"] == "x1")
    assert x1["drifted"] is False and x1["method"] == "wasserstein"
    shifted = send(deployed, hours_ago=24, seed=2, shift=3.0, analyst=analyst)
    report = check(policy, shifted)
    assert "x1" in report.drifted_features
    x2 = next(f for f in report.features if f["name"] == "x2")
    assert x2["drifted"] is False, "x2 was not shifted"
    assert report.performance["labelled_rows"] == 1000
    assert report.performance["metrics"]["accuracy"] is not None
    assert report.prediction_drift["name"] == "prediction"


def test_fewer_rows_than_the_minimum_give_no_verdict(policy, deployed):
    window = send(deployed, hours_ago=5, rows=20, seed=3, labels=False)
    report = check(policy, window)
    assert report.status == "not_enough_data" and report.dataset_drift is None
    assert all(f["status"] == "not_enough_data" for f in report.features)
    assert not Alert.objects.exists()


def test_a_feature_missing_or_null_in_the_logs_is_reported_as_such(policy, deployed):
    from apps.deployments.models import PredictionLog

    window = send(deployed, hours_ago=3, rows=100, seed=4, labels=False)
    for log in PredictionLog.objects.all():
        features = dict(log.features)
        features.pop("color")
        features["x2"] = None
        PredictionLog.objects.filter(pk=log.pk).update(features=features)
    report = check(policy, window)
    statuses = {f["name"]: f["status"] for f in report.features}
    assert statuses["color"] == "missing" and statuses["x2"] == "all_null"


def test_an_alert_opens_once_per_episode_and_resolves(policy, deployed, analyst):
    policy.drift_share = 0.3
    policy.alert_emails = "oncall@example.com"
    policy.retrain_policy = "off"
    policy.save()
    results = []
    for i, shift in enumerate([0.0, 3.0, 3.0, 3.0, 0.0, 0.0]):
        window = send(deployed, hours_ago=60 - 10 * i, seed=10 + i, shift=shift)
        results.append(check(policy, window).status)
    assert results == ["ok", "drifting", "drifting", "drifting", "ok", "ok"]
    alerts = list(Alert.objects.all())
    assert len(alerts) == 1, "one alert per episode, not one per check"
    alert = alerts[0]
    assert alert.status == "resolved" and alert.resolved_by.status == "ok"
    assert alert.opened_by.window_end < alert.resolved_at
    notify_jobs = Job.objects.filter(kind="monitoring.notify")
    assert notify_jobs.count() == 0  # queued on commit; this test runs inside one transaction


def test_notifications_send_the_email_and_record_the_outcome(policy, deployed):
    policy.alert_emails = "oncall@example.com"
    policy.save()
    window = send(deployed, hours_ago=2, seed=5, shift=3.0)
    policy.drift_share = 0.3
    policy.save()
    report = check(policy, window)
    alert = Alert.objects.get(opened_by=report)
    alert_notify(alert=alert, event="opened")
    assert mail.outbox[-1].to == ["oncall@example.com"]
    assert "drift" in mail.outbox[-1].subject.lower()
    alert.refresh_from_db()
    assert alert.notifications[0]["outcomes"][0] == {"channel": "email", "ok": True, "to": ["oncall@example.com"]}


def test_a_drift_alert_starts_a_retraining_that_ends_in_a_pending_promotion(
    policy, deployed, analyst, django_capture_on_commit_callbacks
):
    from apps.core.jobs import JobContext
    from tests.factories import train_inline

    policy.drift_share = 0.3
    policy.save()
    window = send(deployed, hours_ago=2, seed=6, shift=3.0, analyst=analyst)
    report = check(policy, window)
    retraining = Retraining.objects.get()
    assert retraining.alert.opened_by == report and retraining.trigger == "drift"
    job = retraining.job
    Job.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()
    retraining_prepare(retraining=retraining, ctx=JobContext(job))
    retraining.refresh_from_db()
    assert retraining.production_rows == 1000
    assert retraining.dataset_version.source == "feedback"
    assert retraining.dataset_version.rows == 2000 + 1000
    run = retraining.run
    assert run.source == "retraining" and run.algorithm == deployed.model_version.run.algorithm
    with django_capture_on_commit_callbacks(execute=True):
        train_inline(run)
    retraining.refresh_from_db()
    assert retraining.status == "awaiting approval"
    promotion = retraining.promotion
    assert promotion.status == "pending" and promotion.requested_by.username == "mlops-system"
    assert promotion.on_behalf_of is None  # no person asked for this check
    assert promotion.model_version == retraining.model_version and promotion.model_version.run == run
    assert "drift alert" in promotion.reason


def test_a_drift_check_someone_asked_for_retrains_on_their_behalf(policy, deployed, analyst):
    from apps.monitoring.services import check_request

    policy.drift_share = 0.3
    policy.save()
    window = send(deployed, hours_ago=2, seed=6, shift=3.0, analyst=analyst)
    job = check_request(user=analyst, policy=policy, window_start=window[0], window_end=window[1])
    drift_check(policy=policy, window_start=window[0], window_end=window[1], job=job)
    retraining = Retraining.objects.get()
    assert retraining.trigger == "drift" and retraining.job.created_by == analyst


def test_a_retraining_started_by_hand_opens_a_request_on_behalf_of_its_starter(
    policy, deployed, engineer, django_capture_on_commit_callbacks
):
    from apps.core.jobs import JobContext
    from apps.monitoring.services import retraining_start
    from tests.factories import train_inline

    retraining = retraining_start(policy=policy, trigger="manual", user=engineer)
    Job.objects.filter(pk=retraining.job_id).update(status="running")
    retraining_prepare(retraining=retraining, ctx=JobContext(Job.objects.get(pk=retraining.job_id)))
    retraining.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        train_inline(retraining.run)
    retraining.refresh_from_db()
    promotion = retraining.promotion
    assert promotion.requested_by.username == "mlops-system" and promotion.on_behalf_of == engineer
    assert "manual retraining" in promotion.reason and promotion.is_own(engineer)


def test_reports_are_listed_by_the_drift_api_and_a_check_can_be_requested(policy, deployed, analyst, client_for):
    window = send(deployed, hours_ago=2, seed=7)
    check(policy, window)
    body = client_for(analyst).get(f"/api/v1/deployments/{deployed.pk}/drift/").json()
    assert len(body) == 1
    assert {"id", "window_start", "window_end", "rows", "dataset_drift", "drift_share", "features"} <= set(body[0])
    assert {"name", "method", "statistic", "p_value", "threshold", "drifted"} <= set(body[0]["features"][0])
    response = client_for(analyst).post(f"/api/v1/deployments/{deployed.pk}/drift-checks/", {},
                                        content_type="application/json")
    assert response.status_code == 202 and response.json()["job"]["kind"] == "monitoring.drift_check"
    bad = client_for(analyst).post(f"/api/v1/deployments/{deployed.pk}/drift-checks/",
                                   {"window_start": "2026-02-01T00:00", "window_end": "2026-01-01T00:00"},
                                   content_type="application/json")
    assert bad.status_code == 400 and "window_start" in bad.json()["error"]["fields"]


@pytest.mark.parametrize("window, field", [({"window_end": "0001-01-01T00:00:00Z"}, "window_end"),
                                           ({"window_start": "1999-12-31T23:00:00Z"}, "window_start"),
                                           ({"window_end": "9999-12-31T23:59:59Z"}, "window_end")])
def test_a_window_outside_any_log_is_refused_before_a_job_exists(deployed, analyst, client_for, window, field):
    response = client_for(analyst).post(f"/api/v1/deployments/{deployed.pk}/drift-checks/", window,
                                        content_type="application/json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not Job.objects.filter(kind="monitoring.drift_check").exists()
