"""Jobs run by a real Celery worker (prefork, with beat) on Redis and PostgreSQL."""

from __future__ import annotations

import pytest

from apps.core.models import AuditEvent, Job
from apps.core.services import job_cancel, job_create, job_send
from apps.core.tasks import SELFCHECK
from tests.conftest import wait_until

pytestmark = pytest.mark.worker


def finished(job: Job) -> Job | None:
    job.refresh_from_db()
    return job if job.is_finished else None


def executions(job: Job) -> int:
    return AuditEvent.objects.filter(action="job.selfcheck.executed", object_id=str(job.pk)).count()


def test_a_job_succeeds_and_reports_progress_on_the_way(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 6, "step_seconds": 0.4})
    seen = set()

    def done():
        job.refresh_from_db()
        seen.add(job.progress)
        return job.is_finished

    wait_until(done, timeout=60, interval=0.1, message="the self-check to finish")
    assert job.status == "succeeded", job.error
    assert job.progress == 100
    assert job.result["steps"] == 6
    assert any(0 < p < 100 for p in seen), f"no intermediate progress seen: {sorted(seen)}"
    assert job.started_at and job.finished_at and job.heartbeat_at


def test_a_failing_job_is_failed_with_a_readable_message(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 4, "step_seconds": 0.05, "fail_at_step": 2})
    wait_until(lambda: finished(job), timeout=60, message="the job to fail")
    assert job.status == "failed"
    assert job.error == "Self-check failed at step 2 of 4, as requested."
    assert job.attempt == 1, "an expected error is not retried"


def test_a_redelivered_message_runs_the_work_once(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 3, "step_seconds": 0.3})
    job_send(job_id=job.pk)  # the same message a second time, as a redelivery would
    job_send(job_id=job.pk)
    wait_until(lambda: finished(job), timeout=60, message="the job to finish")
    wait_until(lambda: "skipped" in worker.log() or "not claimed" in worker.log(), timeout=20, message="duplicates")
    assert job.status == "succeeded"
    assert executions(job) == 1


def test_a_transient_error_is_retried_on_schedule_and_then_succeeds(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 2, "step_seconds": 0.05, "transient_failures": 1})
    wait_until(lambda: finished(job), timeout=60, message="the retried job to finish")
    assert job.status == "succeeded", job.error
    assert job.attempt == 2
    assert executions(job) == 2


def test_a_cancelled_running_job_stops_at_its_next_checkpoint(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 50, "step_seconds": 0.2})
    wait_until(lambda: Job.objects.get(pk=job.pk).progress > 0, timeout=60, message="the job to make progress")
    job_cancel(job=job, user=engineer)
    wait_until(lambda: finished(job), timeout=30, message="the job to stop")
    assert job.status == "cancelled"
    assert job.progress < 100


def test_a_worker_killed_mid_job_ends_in_a_retried_success(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 16, "step_seconds": 0.25})
    wait_until(lambda: Job.objects.get(pk=job.pk).progress > 0, timeout=60, message="the job to start")
    worker.kill()
    job.refresh_from_db()
    assert job.status == "running", "the killed worker could not record anything"
    worker.start()  # its beat runs the reaper, which requeues the stale job
    wait_until(lambda: finished(job), timeout=90, message="the requeued job to finish")
    assert job.status == "succeeded", job.error
    assert job.attempt == 2
    assert AuditEvent.objects.filter(action="job.reaped", object_id=str(job.pk)).exists()


def test_a_worker_killed_on_the_last_attempt_fails_the_job_with_the_reason(worker, engineer):
    job = job_create(kind=SELFCHECK, created_by=engineer, params={"steps": 40, "step_seconds": 0.25}, max_attempts=1)
    wait_until(lambda: Job.objects.get(pk=job.pk).progress > 0, timeout=60, message="the job to start")
    worker.kill()
    worker.start()
    wait_until(lambda: finished(job), timeout=90, message="the reaper to fail the job")
    assert job.status == "failed"
    assert job.error.startswith("Worker lost: no heartbeat for")
    assert "attempt 1 of 1" in job.error
