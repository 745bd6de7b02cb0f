from celery import shared_task

from apps.core.jobs import JobContext, job_task

from .models import PipelineChange
from .services import (
    PIPELINE_STEP_JOB,
    SNAPSHOT_JOB,
    daily_snapshot_due,
    pipeline_fail,
    pipeline_step_run,
    snapshot_all,
)


@job_task(SNAPSHOT_JOB)
def take_snapshot(ctx: JobContext) -> dict:
    rows = snapshot_all(trigger=ctx.params.get("trigger", "manual"), job=ctx.job)
    levels = {}
    for row in rows:
        levels[row.level] = levels.get(row.level, 0) + 1
    text = ", ".join(f"{n} at level {lvl}" for lvl, n in sorted(levels.items())) or "no models"
    return {"message": f"Maturity recomputed: {text}", "snapshots": len(rows)}


@job_task(PIPELINE_STEP_JOB)
def pipeline_step(ctx: JobContext) -> dict:
    change = PipelineChange.objects.select_related("model", "created_by").get(pk=ctx.job.target_id)
    step = ctx.params.get("step", "")
    try:
        return pipeline_step_run(change=change, step=step, ctx=ctx)
    except Exception as exc:
        from apps.core.jobs import TRANSIENT_ERRORS

        if isinstance(exc, TRANSIENT_ERRORS) and ctx.job.attempt < ctx.job.max_attempts:
            raise
        pipeline_fail(change=change, step=step, reason="; ".join(getattr(exc, "messages", [str(exc)])))
        raise


@shared_task(name="maturity.daily", ignore_result=True)
def daily() -> str:
    job = daily_snapshot_due()
    return f"queued job {job.pk}" if job else "already done today"
