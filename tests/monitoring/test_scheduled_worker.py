"""A beat-scheduled drift check runs on the real worker (beat embedded in the test worker)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitoring.models import DriftReport, MonitorPolicy
from tests.conftest import wait_until
from tests.monitoring.conftest import send

pytestmark = pytest.mark.worker


def test_beat_schedules_a_due_check_and_the_worker_runs_it(worker, policy, deployed):
    send(deployed, hours_ago=1, rows=300, seed=3)
    MonitorPolicy.objects.filter(pk=policy.pk).update(enabled=True, next_run_at=timezone.now() - timedelta(seconds=1),
                                                      schedule_minutes=60)
    wait_until(lambda: DriftReport.objects.filter(policy=policy).exists(), timeout=60,
               message="the scheduled drift check")
    report = DriftReport.objects.get(policy=policy)
    assert report.rows == 300 and report.job is not None and report.job.kind == "monitoring.drift_check"
    policy.refresh_from_db()
    assert policy.next_run_at > timezone.now() + timedelta(minutes=55), "the next run is an hour away"
