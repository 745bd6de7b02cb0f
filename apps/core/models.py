"""Jobs (the source of truth for background work) and audit events."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import reverse
from django.utils import timezone

from . import roles


class Access(models.Model):
    """Holds the site's capability permissions; it has no table.

    The role groups (created by ``accounts``' data migration) are granted these, and
    services check them with ``user.has_perm("core.<codename>")``.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_dashboard", "Can read every page and chart"),
            ("upload_dataset", "Can upload datasets and correct their schema"),
            ("override_validation", "Can override a failed dataset validation"),
            ("launch_training", "Can launch and cancel training runs"),
            ("register_model", "Can register model versions"),
            ("request_promotion", "Can request promotion of a model version"),
            ("decide_promotion", "Can approve or reject promotion requests"),
            ("deploy_nonproduction", "Can deploy to non-production environments"),
            ("deploy_production", "Can deploy and roll back production"),
            ("predict", "Can call the prediction API"),
            ("view_audit", "Can read the audit log"),
        ]

    def __str__(self) -> str:
        return "site access"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

# Job kinds whose jobs everyone holding a capability may cancel, besides their starter and
# admins (a training run may be stopped by any engineer). ``core.jobs.job_task`` fills it
# from the ``cancel_capability`` its task declares.
CANCEL_CAPABILITIES: dict[str, str] = {}


class Job(models.Model):
    """A unit of background work. ``kind`` is the Celery task name that performs it."""

    kind = models.CharField(max_length=100, db_index=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL)
    target_id = models.BigIntegerField(null=True, blank=True)
    target = GenericForeignKey("target_type", "target_id")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            # the reaper scans only live jobs
            models.Index(
                fields=["heartbeat_at"], name="job_running_heartbeat", condition=models.Q(status="running")
            ),
            # and queued ones whose message may never have reached the broker
            models.Index(fields=["sent_at"], name="job_queued_sent", condition=models.Q(status="queued")),
        ]

    def __str__(self) -> str:
        return f"Job #{self.pk} {self.kind} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("core:job_detail", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def can_cancel(self, user) -> bool:
        """The person who started the job and admins may cancel it, and for some kinds
        everyone who holds the capability the kind names."""
        if not (getattr(user, "is_authenticated", False) and user.is_active):
            return False
        if user.is_staff or (self.created_by_id is not None and self.created_by_id == user.pk):
            return True
        capability = CANCEL_CAPABILITIES.get(self.kind)
        return capability is not None and roles.can(user, capability)

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def as_dict(self) -> dict:
        return {
            "id": self.pk,
            "kind": self.kind,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "error": self.error,
            "attempt": self.attempt,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "url": self.get_absolute_url(),
        }


class AuditEvent(models.Model):
    """An immutable record of one state change: who did what to which object."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    object_type = models.CharField(max_length=100, blank=True, db_index=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=255, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action} {self.object_repr}"
