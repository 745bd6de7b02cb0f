"""An admin's change to a monitor policy in the Django admin goes through the same service as the settings page."""

from __future__ import annotations

from apps.core.models import AuditEvent
from tests.monitoring.test_policy_rules import watched  # noqa: F401 - a fixture


def _admin_form(policy, **changes) -> dict:
    data = {"model": policy.model_id, "environment": policy.environment_id, "enabled": "on",
            "schedule_minutes": policy.schedule_minutes, "window_hours": policy.window_hours, "window_predictions": "",
            "reference_dataset_version": "", "numeric_method": policy.numeric_method, "numeric_threshold": "",
            "categorical_method": policy.categorical_method, "categorical_threshold": "",
            "drift_share": policy.drift_share, "min_rows": policy.min_rows, "alert_emails": policy.alert_emails,
            "webhook_url": policy.webhook_url, "retrain_policy": policy.retrain_policy,
            "retrain_every_days": policy.retrain_every_days, "performance_metric": policy.performance_metric,
            "performance_threshold": "", "next_run_at_0": policy.next_run_at.strftime("%Y-%m-%d"),
            "next_run_at_1": policy.next_run_at.strftime("%H:%M:%S")}
    data.update({name: "on" for name in ("include_production_rows", "include_interactive") if getattr(policy, name)})
    data.update(changes)
    return data


def test_an_admin_edit_records_who_changed_the_policy_and_audits_it(watched, admin_user, client_for):  # noqa: F811
    response = client_for(admin_user).post(f"/admin/monitoring/monitorpolicy/{watched.pk}/change/",
                                           _admin_form(watched, drift_share="0.45"))
    assert response.status_code == 302, response.content.decode()[:2000]
    watched.refresh_from_db()
    assert watched.drift_share == 0.45 and watched.changed_by == admin_user
    event = AuditEvent.objects.get(action="monitor_policy.update")
    assert event.actor == admin_user and event.after["drift_share"] == 0.45 and event.before["drift_share"] == 0.5


def test_an_admin_edit_the_model_refuses_changes_nothing(watched, admin_user, client_for):  # noqa: F811
    response = client_for(admin_user).post(f"/admin/monitoring/monitorpolicy/{watched.pk}/change/",
                                           _admin_form(watched, retrain_every_days="0", retrain_policy="on_schedule"))
    assert response.status_code == 200 and b"errornote" in response.content
    assert not AuditEvent.objects.filter(action="monitor_policy.update").exists()
