"""Maturity: thresholds (a singleton), snapshots of each model's level, CI pipeline changes."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Job
from apps.deployments.models import Deployment
from apps.experiments.models import Run
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel


class MaturitySettings(models.Model):
    """Thresholds and periods of the criteria (one row, edited in the Django admin)."""

    retraining_period_days = models.PositiveIntegerField(
        default=30, help_text="Continuous training must have produced a version within this many days.")
    drift_period_days = models.PositiveIntegerField(
        default=2, help_text="A drift check of the production deployment must have run within this many days.")
    performance_period_days = models.PositiveIntegerField(
        default=7, help_text="Performance against ground truth must have been measured within this many days.")
    releases_window_days = models.PositiveIntegerField(default=90, help_text="The window for counting releases.")
    min_releases = models.PositiveIntegerField(
        default=2, help_text="Level 2: at least this many production releases within the window.")
    snapshot_backfill_days = models.PositiveIntegerField(
        default=14, help_text="The demo seed computes daily snapshots this many days back (from the records then).")

    class Meta:
        verbose_name = "maturity settings"
        verbose_name_plural = "maturity settings"

    def __str__(self) -> str:
        return "maturity thresholds"

    @classmethod
    def load(cls) -> MaturitySettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class PipelinePolicy(models.Model):
    """Per model, what automation an admin allows for CI pipeline changes."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="pipeline_policy")
    auto_approve_staging = models.BooleanField(
        default=False,
        help_text="Approve a CI pipeline change's staging request automatically when every gate passed "
                  "(recorded as an approval by the policy account, naming the admin who enabled it).")
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "pipeline policies"

    def __str__(self) -> str:
        return f"pipeline policy of {self.model}"


class MaturitySnapshot(models.Model):
    """A model's level, progress and criteria as computed at ``taken_at`` from the records then."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="maturity_snapshots")
    taken_at = models.DateTimeField(db_index=True)
    date = models.DateField(db_index=True)
    level = models.PositiveSmallIntegerField()
    progress = models.FloatField(help_text="Share of the next level's criteria met (1.0 at the top level).")
    criteria = models.JSONField(default=list)
    trigger = models.CharField(max_length=12, choices=[("daily", "Daily job"), ("manual", "Recompute now"),
                                                       ("backfill", "Backfill from records"),
                                                       ("event", "Pipeline event")])
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["taken_at", "id"]
        indexes = [models.Index(fields=["model", "taken_at"])]

    def __str__(self) -> str:
        return f"{self.model} level {self.level} at {self.taken_at:%Y-%m-%d %H:%M}"


class PipelineStatus(models.TextChoices):
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a person"
    SUCCEEDED = "succeeded", "Production request opened"
    FAILED = "failed", "Failed"


STEP_KEYS = [
    ("train", "Train with the spec"),
    ("gates", "Register and run the staging gates"),
    ("approve_staging", "Approve staging by policy"),
    ("deploy_staging", "Deploy to staging"),
    ("smoke_test", "Smoke test the staging deployment"),
    ("request_production", "Open the production promotion request"),
]


class PipelineChange(models.Model):
    """A change pushed by CI: trained, gated, staged, smoke-tested, then offered for production."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="pipeline_changes")
    source_commit = models.CharField(max_length=100)
    spec = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=PipelineStatus.choices, default=PipelineStatus.RUNNING)
    reason = models.TextField(blank=True, help_text="Why it failed or what it waits for.")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="pipeline_changes")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    staging_promotion = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                          related_name="+")
    auto_approved = models.BooleanField(default=False)
    deployment = models.ForeignKey(Deployment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    smoke = models.JSONField(default=dict, blank=True)
    smoke_passed_at = models.DateTimeField(null=True, blank=True)
    production_promotion = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                             related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"pipeline change #{self.pk} of {self.model} ({self.source_commit[:12]})"

    def get_absolute_url(self) -> str:
        return reverse("maturity:pipeline_change", args=[self.pk])


class PipelineStep(models.Model):
    change = models.ForeignKey(PipelineChange, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=20, choices=STEP_KEYS)
    order = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, default="running")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    detail = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["change", "order"]
        constraints = [models.UniqueConstraint(fields=["change", "key"], name="one_step_per_key")]

    def __str__(self) -> str:
        return f"{self.get_key_display()} ({self.status})"
