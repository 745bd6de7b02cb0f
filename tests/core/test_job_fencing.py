"""An attempt the reaper replaced cannot write over the attempt that replaced it.

The scenario: attempt 1 runs, stops sending heartbeats long enough for the reaper to
requeue the job (a long GC pause, a network partition), and a second worker claims it
as attempt 2. Attempt 1 then wakes up and reports progress, heartbeats and finishes.
Every one of those writes must leave attempt 2's row alone.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.jobs import JobFailed, TransientJobError, execute_job
from apps.core.models import Job, JobStatus
from apps.core.tasks import SELFCHECK

pytestmark = pytest.mark.django_db(transaction=True)

TAKEN_OVER_AT = timezone.now() - timedelta(days=1)


def take_over(job_id: int) -> None:
    """The end state of the reaper's requeue and a second worker's claim, written at once.

    (Through the real reaper, its resent message could reach the suite's worker, which
    would claim the job before this test does.)
    """
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempt=1).update(
        attempt=2, progress=5, message="attempt 2 working", heartbeat_at=TAKEN_OVER_AT, worker="second-worker",
    )
    assert claimed == 1


def finish_normally(ctx):
    return {"message": "attempt 1 thinks it is done"}


def fail_expectedly(ctx):
    raise JobFailed("attempt 1 failed late")


def fail_transiently(ctx):
    raise TransientJobError("attempt 1 lost its database for a moment")


@pytest.mark.parametrize("ending", [finish_normally, fail_expectedly, fail_transiently], ids=lambda f: f.__name__)
def test_a_replaced_attempt_leaves_the_newer_attempt_running(settings, ending):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    job = Job.objects.create(kind=SELFCHECK)

    def handler(ctx):
        take_over(job.pk)
        time.sleep(0.3)  # several of attempt 1's heartbeat intervals
        return ending(ctx)

    assert execute_job(job_id=job.pk, handler=handler) == "superseded"
    job.refresh_from_db()
    assert (job.status, job.attempt, job.worker) == ("running", 2, "second-worker")
    assert (job.progress, job.message) == (5, "attempt 2 working")
    assert job.heartbeat_at == TAKEN_OVER_AT, "attempt 1's heartbeat thread wrote to attempt 2's row"
    assert job.finished_at is None and job.error == "" and job.retry_at is None


def test_a_replaced_attempt_stops_at_its_next_progress_report(settings):
    job = Job.objects.create(kind=SELFCHECK)
    reached = []

    def handler(ctx):
        take_over(job.pk)
        ctx.progress(80, "attempt 1 progress")
        reached.append("after progress")

    assert execute_job(job_id=job.pk, handler=handler) == "superseded"
    assert reached == []
    job.refresh_from_db()
    assert (job.status, job.progress, job.message) == ("running", 5, "attempt 2 working")


def test_the_current_attempt_still_reports_progress_and_finishes(settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    job = Job.objects.create(kind=SELFCHECK)
    seen = []

    def handler(ctx):
        ctx.progress(40, "halfway")
        seen.append(Job.objects.values_list("progress", "message").get(pk=job.pk))
        time.sleep(0.2)
        return {"message": "done by attempt 1"}

    before = timezone.now()
    execute_job(job_id=job.pk, handler=handler)
    job.refresh_from_db()
    assert seen == [(40, "halfway")]
    assert (job.status, job.message, job.progress) == ("succeeded", "done by attempt 1", 100)
    assert job.heartbeat_at > before
