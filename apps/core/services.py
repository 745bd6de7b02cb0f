"""Writes and workflows of the core app: jobs and audit events."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
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


def job_create(
    *,
    kind: str,
    created_by=None,
    target: models.Model | None = None,
    params: dict | None = None,
    message: str = "Waiting for a worker",
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
    transaction.on_commit(lambda: job_send(job_id=job.pk))
    return job


def job_send(*, job_id: int, countdown: float | None = None) -> None:
    from mlops_web.celery import app

    kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    app.send_task(kind, args=[job_id], countdown=countdown)
    Job.objects.filter(pk=job_id).update(sent_at=timezone.now())


def job_cancel(*, job: Job, user) -> Job:
    """Cancel a queued job at once; ask a running one to stop at its next checkpoint."""
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
    """Requeue or fail jobs whose worker stopped sending heartbeats.

    A worker killed with SIGKILL cannot mark its job; this is what guarantees that no
    job stays "running" for ever. A job with attempts left is requeued (and its message
    re-sent); one without is failed with the reason.
    """
    now = now or timezone.now()
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
                transaction.on_commit(lambda pk=job.pk: job_send(job_id=pk))
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
    # A queued job whose message was lost (a broker wiped, an unacked message dropped
    # with its worker) is sent again; the claim makes a duplicate harmless.
    resend_before = now - timedelta(seconds=settings.JOB_RESEND_SECONDS)
    resent = list(
        Job.objects.filter(status=JobStatus.QUEUED, sent_at__lt=resend_before)
        .filter(models.Q(retry_at__isnull=True) | models.Q(retry_at__lt=now))
        .values_list("pk", flat=True)[:100]
    )
    for job_id in resent:
        job_send(job_id=job_id)
    if requeued or failed or resent:
        logger.warning("reaped stale jobs", extra={"requeued": requeued, "failed": failed, "resent": resent})
    return {"requeued": requeued, "failed": failed, "resent": resent}
