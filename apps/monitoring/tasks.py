from datetime import datetime

from celery import shared_task

from apps.core.jobs import JobContext, job_task

from .models import Alert, MonitorPolicy, Retraining
from .services import (
    CHECK_JOB,
    NOTIFY_JOB,
    RETRAIN_JOB,
    alert_notify,
    drift_check,
    retraining_prepare,
    schedule_due_checks,
)


@job_task(CHECK_JOB)
def run_drift_check(ctx: JobContext) -> dict:
    policy = MonitorPolicy.objects.select_related("model", "environment").get(pk=ctx.job.target_id)
    start, end = ctx.params.get("window_start"), ctx.params.get("window_end")
    report = drift_check(
        policy=policy,
        window_start=datetime.fromisoformat(start) if start else None,
        window_end=datetime.fromisoformat(end) if end else None,
        job=ctx.job,
        progress=ctx.progress,
    )
    share = f"{report.drift_share:.0%}" if report.drift_share is not None else "n/a"
    return {"message": f"{report.get_status_display()}: {report.rows} rows, drift share {share}",
            "report": report.pk}


@job_task(NOTIFY_JOB)
def notify_alert(ctx: JobContext) -> dict:
    alert = Alert.objects.select_related("policy__model", "policy__environment", "opened_by", "resolved_by").get(
        pk=ctx.job.target_id)
    return alert_notify(alert=alert, event=ctx.params.get("event", "opened"))


@job_task(RETRAIN_JOB)
def retrain(ctx: JobContext) -> dict:
    retraining = Retraining.objects.select_related("policy__model", "source_version__run__dataset_version",
                                                   "source_version__run__experiment").get(pk=ctx.job.target_id)
    try:
        return retraining_prepare(retraining=retraining, ctx=ctx)
    except Exception as exc:
        Retraining.objects.filter(pk=retraining.pk).update(status="failed", error=str(exc)[:2000])
        raise


@shared_task(name="monitoring.schedule", ignore_result=True)
def schedule() -> dict:
    return schedule_due_checks()
