"""Running a Job inside a Celery worker.

``job_task(name)`` turns a handler ``handler(ctx: JobContext) -> dict | None`` into a
Celery task named ``name`` (which is also the Job's ``kind``). The task:

1. claims the job with a conditional UPDATE (queued -> running), so a redelivered
   message or a duplicate send runs the work at most once;
2. keeps a heartbeat from a side thread while the handler runs (the reaper requeues
   or fails a job whose heartbeat goes stale, e.g. after SIGKILL);
3. records the outcome: succeeded with a result, failed with a readable message
   (expected errors are not logged as crashes), retried on a bounded schedule for
   transient errors only, or cancelled at a checkpoint.

Every write an attempt makes after its claim is fenced by its attempt number: when the
reaper gave the job to a newer attempt (this one looked dead), this attempt's progress,
heartbeats and outcome change nothing, and its next progress report after the newer
attempt's claim stops it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from apps.ml.errors import MLError

from .models import CANCEL_CAPABILITIES, Job, JobStatus
from .services import job_send

logger = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised at a checkpoint when the user asked the job to stop."""


class JobFailed(Exception):
    """An expected failure: the message is shown to the user as it is."""


class TransientJobError(Exception):
    """A failure worth retrying (a service briefly unreachable)."""


class JobSuperseded(Exception):
    """This attempt no longer owns the job: the reaper requeued it and another attempt runs."""


EXPECTED_ERRORS = (JobFailed, MLError, ValidationError, PermissionDenied)
TRANSIENT_ERRORS = (TransientJobError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


def _owned(job_id: int, attempt: int):
    """The job's row, as long as it is still running this attempt."""
    return Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempt=attempt)


class JobContext:
    """What a handler sees: its job, progress reporting and cancellation checkpoints."""

    def __init__(self, job: Job):
        self.job = job
        self.params = job.params
        self._last_write = 0.0
        self._last_percent = -1

    def progress(self, percent: float, message: str = "") -> None:
        """Record progress (0-100) and check for cancellation; cheap enough to call often."""
        percent = int(max(0, min(99, percent)))
        now = time.monotonic()
        if percent == self._last_percent and now - self._last_write < 0.5:
            return
        self._last_write, self._last_percent = now, percent
        updated = _owned(self.job.pk, self.job.attempt).update(
            progress=percent, message=message[:255], heartbeat_at=timezone.now()
        )
        if not updated and Job.objects.filter(pk=self.job.pk, attempt__gt=self.job.attempt).exists():
            raise JobSuperseded()
        self.check_cancelled()

    def check_cancelled(self) -> None:
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled()

    def should_cancel(self) -> bool:
        return Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()


class _Heartbeat(threading.Thread):
    def __init__(self, job_id: int, attempt: int, interval: float):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id = job_id
        self.attempt = attempt
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    _owned(self.job_id, self.attempt).update(heartbeat_at=timezone.now())
                except Exception:  # a missed beat is harmless; the next one retries
                    logger.warning("job heartbeat failed", extra={"job_id": self.job_id}, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=self.interval + 5)


def _claim(job_id: int) -> bool:
    now = timezone.now()
    return bool(
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING,
            attempt=F("attempt") + 1,
            started_at=now,
            heartbeat_at=now,
            retry_at=None,
            progress=0,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            message="Started",
        )
    )


def _finish(job: Job, outcome: str, log: dict, **fields) -> str:
    """Record the outcome, unless a newer attempt owns the job by now (then this one says so)."""
    fields.setdefault("finished_at", timezone.now())
    if _owned(job.pk, job.attempt).update(**fields):
        return outcome
    logger.warning("job attempt superseded by a newer one; its outcome was dropped", extra=log)
    return "superseded"


def execute_job(*, job_id: int, handler: Callable[[JobContext], dict | None]) -> str:
    close_old_connections()
    # A long-lived worker must not trust content-type ids cached before a flush or a migration.
    ContentType.objects.clear_cache()
    if not _claim(job_id):
        logger.info("job not claimed (already running, finished or cancelled)", extra={"job_id": job_id})
        return "skipped"
    job = Job.objects.get(pk=job_id)
    heartbeat = _Heartbeat(job_id, job.attempt, settings.JOB_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        return _run(job, handler)
    finally:
        heartbeat.stop()


def _run(job: Job, handler: Callable[[JobContext], dict | None]) -> str:
    log = {"job_id": job.pk, "kind": job.kind, "attempt": job.attempt}
    try:
        if job.cancel_requested:
            raise JobCancelled()
        result = handler(JobContext(job))
    except JobSuperseded:
        logger.warning("job attempt superseded by a newer one; stopped", extra=log)
        return "superseded"
    except JobCancelled:
        logger.info("job cancelled", extra=log)
        return _finish(job, "cancelled", log, status=JobStatus.CANCELLED, message="Cancelled")
    except EXPECTED_ERRORS as exc:
        text = exc.message if isinstance(exc, MLError) else "; ".join(getattr(exc, "messages", [str(exc)]))
        logger.info("job failed", extra={**log, "error": text})
        return _finish(job, "failed", log, status=JobStatus.FAILED, error=text, message="Failed")
    except SoftTimeLimitExceeded:
        limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
        return _finish(job, "failed", log, status=JobStatus.FAILED,
                       error=f"Stopped: the job ran past its {limit}s time limit.")
    except TRANSIENT_ERRORS as exc:
        return _retry_or_give_up(job, exc, log)
    except Exception as exc:
        logger.exception("job crashed", extra=log)
        return _finish(job, "failed", log, status=JobStatus.FAILED, message="Failed",
                       error=f"Internal error ({type(exc).__name__}): {exc}")
    message = (result or {}).get("message", "Done")[:255] if isinstance(result, dict) else "Done"
    logger.info("job succeeded", extra=log)
    return _finish(job, "succeeded", log, status=JobStatus.SUCCEEDED, progress=100, message=message,
                   result=result if isinstance(result, dict) else {})


def _retry_or_give_up(job: Job, exc: Exception, log: dict) -> str:
    close_old_connections()
    if job.attempt >= job.max_attempts:
        return _finish(job, "failed", log, status=JobStatus.FAILED, message="Failed",
                       error=f"Gave up after {job.attempt} attempts; last error: {exc}")
    delays = settings.JOB_RETRY_DELAYS
    delay = delays[min(job.attempt - 1, len(delays) - 1)]
    outcome = _finish(job, "retrying", log, status=JobStatus.QUEUED, finished_at=None,
                      retry_at=timezone.now() + timedelta(seconds=delay),
                      message=f"Retrying in {delay}s after a transient error: {exc}"[:255])
    if outcome == "retrying":
        job_send(job_id=job.pk, countdown=delay)
        logger.warning("job will retry", extra={**log, "error": str(exc), "delay": delay})
    return outcome


def job_task(name: str, *, cancel_capability: str | None = None, **options):
    """Register ``handler`` as the Celery task ``name`` that runs Jobs of that kind.

    ``cancel_capability``: besides the job's starter and admins, whoever holds this
    capability may cancel jobs of this kind (see ``Job.can_cancel``).
    """

    def decorator(handler: Callable[[JobContext], dict | None]):
        def run(job_id: int) -> str:
            return execute_job(job_id=job_id, handler=handler)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        task = shared_task(name=name, acks_late=True, reject_on_worker_lost=True, **options)(run)
        task.handler = handler
        if cancel_capability:
            CANCEL_CAPABILITIES[name] = cancel_capability
        return task

    return decorator
