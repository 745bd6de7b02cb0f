"""Demo monitoring: the real drift-check job run over each day of the production traffic, so
the charts show drift emerging, an alert opening, a retraining run and a pending request."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_create
from apps.demo.wait import wait_for
from apps.deployments.models import Deployment, PredictionLog
from apps.monitoring.models import MonitorPolicy, Retraining
from apps.monitoring.services import CHECK_JOB, policy_ensure


def seed() -> str:
    deployment = Deployment.objects.filter(model__name="churn-model", environment__name="production",
                                           status="active").select_related("model", "environment").first()
    if deployment is None:
        return "no production churn deployment"
    policy = policy_ensure(model=deployment.model, environment=deployment.environment)
    if policy.reports.filter(window_start__lt=timezone.now() - timedelta(days=2)).exists():
        return "drift checks already computed"
    MonitorPolicy.objects.filter(pk=policy.pk).update(
        alert_emails="oncall@example.com", min_rows=50, window_hours=24, retrain_policy="on_drift", drift_share=0.3,
        next_run_at=timezone.now() + timedelta(hours=1))
    first = PredictionLog.objects.filter(deployment_id=deployment.pk).order_by("created_at").values_list(
        "created_at", flat=True).first()
    if first is None:
        return "no traffic"
    # daily windows from the first full day: a partial first day is a small, noisy sample
    day = first.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    checks = 0
    while day < timezone.now() - timedelta(hours=1):
        end = min(day + timedelta(days=1), timezone.now())
        job = job_create(kind=CHECK_JOB, target=policy, message="Demo: daily drift check",
                         params={"window_start": day.isoformat(), "window_end": end.isoformat()})
        wait_for(lambda pk=job.pk: Job.objects.get(pk=pk).is_finished, what="a demo drift check", timeout=300)
        checks += 1
        day = end
    retraining = Retraining.objects.filter(policy=policy).first()
    if retraining is not None:
        wait_for(lambda: Retraining.objects.get(pk=retraining.pk).status in ("awaiting approval", "failed"),
                 what="the demo retraining", timeout=600)
        retraining.refresh_from_db()
    return f"{checks} daily drift checks; retraining: {retraining.status if retraining else 'none'}"
