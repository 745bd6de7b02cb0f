"""Core background tasks: the stale-job reaper and the worker self-check."""

from __future__ import annotations

import time

from celery import shared_task

from .jobs import JobContext, JobFailed, TransientJobError, job_task
from .services import audit_record, jobs_reap_stale

SELFCHECK = "core.selfcheck"


@shared_task(name="core.reap_stale_jobs", ignore_result=True)
def reap_stale_jobs() -> dict:
    return jobs_reap_stale()


@job_task(SELFCHECK)
def selfcheck(ctx: JobContext) -> dict:
    """Exercise the worker: a few timed steps with progress.

    Admins start it from the jobs page to prove the worker runs; the test suite uses
    its parameters to make it fail, fail transiently, or run long enough to be killed.
    """
    steps = int(ctx.params.get("steps", 5))
    step_seconds = float(ctx.params.get("step_seconds", 0.2))
    fail_at = ctx.params.get("fail_at_step")
    transient_failures = int(ctx.params.get("transient_failures", 0))
    # One audit event per execution: it shows when a worker really ran the check (and
    # lets the test suite prove that a redelivered message did not run it twice).
    audit_record(actor=None, action="job.selfcheck.executed", obj=ctx.job, after={"attempt": ctx.job.attempt})
    if ctx.job.attempt <= transient_failures:
        raise TransientJobError(f"simulated transient error on attempt {ctx.job.attempt}")
    for step in range(1, steps + 1):
        if fail_at is not None and step == int(fail_at):
            raise JobFailed(f"Self-check failed at step {step} of {steps}, as requested.")
        time.sleep(step_seconds)
        ctx.progress(100 * step / steps, f"Step {step} of {steps}")
    return {"message": f"Self-check passed: {steps} steps", "steps": steps, "attempt": ctx.job.attempt}
