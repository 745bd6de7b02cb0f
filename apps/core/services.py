"""Writes and workflows of the core app: jobs and audit events."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from .models import AuditEvent, Job, JobStatus

logger = logging.getLogger(__name__)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    return str(value)


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    note: str = "",
) -> AuditEvent:
    """Write one audit event. Call inside the same transaction as the change it records."""
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor_obj,
        actor_name=actor_obj.get_username() if actor_obj else "system",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:255] if obj is not None else "",
        before=_json_safe(before),
        after=_json_safe(after),
        note=note,
    )


WAITING_FOR_WORKER = "Waiting for a worker"
WAITING_FOR_BROKER = "Waiting for the broker: it did not answer; the job is sent again when it does"


def job_create(
    *,
    kind: str,
    created_by=None,
    target: models.Model | None = None,
    params: dict | None = None,
    message: str = WAITING_FOR_WORKER,
    max_attempts: int | None = None,
) -> Job:
    """Create a queued job and send its message once the surrounding transaction commits.

    Sending after commit means a worker never receives an id whose row it cannot see,
    and a rolled-back request never leaves a message behind.
    """
    job = Job.objects.create(
        kind=kind,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
        target_type=ContentType.objects.get_for_model(target) if target is not None else None,
        target_id=target.pk if target is not None else None,
        params=params or {},
        message=message,
        max_attempts=max_attempts or settings.JOB_MAX_ATTEMPTS,
    )
    # robust: the request's work is committed by now, so nothing here may turn it into an error
    transaction.on_commit(lambda: job_send(job_id=job.pk), robust=True)
    return job


def job_send(*, job_id: int, countdown: float | None = None) -> bool:
    """Publish the job's message; return whether the broker took it.

    When it did not, the job says it waits for the broker and keeps ``sent_at`` empty;
    the reaper sends it again after ``JOB_UNSENT_GRACE_SECONDS``, so a broker outage
    delays the work and loses none.
    """
    kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    try:
        current_app.send_task(kind, args=[job_id], countdown=countdown)
    except Exception as exc:  # whatever stopped the publish, the row is the truth and the reaper retries
        logger.warning("job message not sent", extra={"job_id": job_id, "error": str(exc)})
        Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(sent_at=None, message=WAITING_FOR_BROKER)
        return False
    Job.objects.filter(pk=job_id).update(
        sent_at=timezone.now(),
        message=Case(When(message=WAITING_FOR_BROKER, then=Value(WAITING_FOR_WORKER)), default=F("message")),
    )
    return True


def job_cancel(*, job: Job, user) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next checkpoint."""
    if not job.can_cancel(user):
        raise PermissionDenied("Only the person who started a job, or an admin, can cancel it.")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        before = {"status": job.status}
        if job.status == JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = timezone.now()
            job.message = "Cancelled before it started"
        else:
            job.cancel_requested = True
            job.message = "Cancelling…"
        job.save(update_fields=["status", "finished_at", "message", "cancel_requested"])
        audit_record(actor=user, action="job.cancel", obj=job, before=before, after={"status": job.status})
    return job


def jobs_for(target: models.Model):
    return Job.objects.filter(
        target_type=ContentType.objects.get_for_model(target), target_id=target.pk
    ).order_by("-id")


def jobs_reap_stale(*, now=None) -> dict:
    """Requeue or fail jobs whose worker stopped sending heartbeats, and send again the
    messages of queued jobs that never reached a worker.

    A worker killed with SIGKILL cannot mark its job; this is what guarantees that no
    job stays "running" for ever. A job with attempts left is requeued (and its message
    re-sent); one without is failed with the reason.
    """
    now = now or timezone.now()
    requeued, failed = _reap_stale_running(now)
    resent = _resend_lost_messages(now)
    if requeued or failed or resent:
        logger.warning("reaped stale jobs", extra={"requeued": requeued, "failed": failed, "resent": resent})
    return {"requeued": requeued, "failed": failed, "resent": resent}


def _reap_stale_running(now) -> tuple[list[int], list[int]]:
    cutoff = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    requeued, failed = [], []
    stale_ids = list(
        Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff).values_list("pk", flat=True)
    )
    for job_id in stale_ids:
        with transaction.atomic():
            job = Job.objects.select_for_update().filter(pk=job_id, status=JobStatus.RUNNING).first()
            if job is None or job.heartbeat_at is None or job.heartbeat_at >= cutoff:
                continue
            lost_for = int((now - job.heartbeat_at).total_seconds())
            reason = f"Worker lost: no heartbeat for {lost_for}s (attempt {job.attempt} of {job.max_attempts})"
            if job.attempt < job.max_attempts and not job.cancel_requested:
                job.status = JobStatus.QUEUED
                job.message = f"{reason}; requeued"
                job.save(update_fields=["status", "message"])
                transaction.on_commit(lambda pk=job.pk: job_send(job_id=pk), robust=True)
                requeued.append(job.pk)
            else:
                job.status = JobStatus.CANCELLED if job.cancel_requested else JobStatus.FAILED
                job.error = "" if job.cancel_requested else reason
                job.message = "Cancelled" if job.cancel_requested else "Failed: worker lost"
                job.finished_at = now
                job.save(update_fields=["status", "error", "message", "finished_at"])
                failed.append(job.pk)
            audit_record(
                actor=None,
                action="job.reaped",
                obj=job,
                before={"status": "running"},
                after={"status": job.status},
                note=reason,
            )
    return requeued, failed


def _resend_lost_messages(now) -> list[int]:
    """Queued jobs whose message was lost (a broker wiped, an unacked message dropped with
    its worker) or never left (the broker was down when the job was created) are sent
    again; the claim makes a duplicate harmless."""
    sent_long_ago = models.Q(sent_at__lt=now - timedelta(seconds=settings.JOB_RESEND_SECONDS))
    never_sent = models.Q(
        sent_at__isnull=True, created_at__lt=now - timedelta(seconds=settings.JOB_UNSENT_GRACE_SECONDS)
    )
    due = models.Q(retry_at__isnull=True) | models.Q(retry_at__lt=now)
    candidates = list(
        Job.objects.filter(status=JobStatus.QUEUED).filter(sent_long_ago | never_sent).filter(due)
        .order_by("pk").values_list("pk", flat=True)[:100]
    )
    return [job_id for job_id in candidates if job_send(job_id=job_id)]
