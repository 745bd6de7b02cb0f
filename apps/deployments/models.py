"""Environments, deployments of model versions into them, and the prediction log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core import roles
from apps.core.models import Job
from apps.registry.models import ModelVersion, RegisteredModel, Stage

STAGE_RANK = {Stage.NONE: 0, Stage.STAGING: 1, Stage.PRODUCTION: 2, Stage.ARCHIVED: -1}


class Environment(models.Model):
    name = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)
    required_stage = models.CharField(
        max_length=12, choices=[(Stage.NONE, "any registered version"), (Stage.STAGING, "staging or production"),
                                (Stage.PRODUCTION, "production only")],
        default=Stage.STAGING,
        help_text="The registry stage a version needs to be deployed here.",
    )
    is_production = models.BooleanField(default=False, help_text="Deploying here needs the production right.")
    max_instances = models.PositiveIntegerField(default=1000, help_text="Most instances one predict call may send.")
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name

    def accepts(self, stage: str) -> bool:
        return STAGE_RANK.get(stage, -1) >= STAGE_RANK[self.required_stage]

    @property
    def deploy_capability(self) -> str:
        """The one rule: deploying to, rolling back and batch scoring in production need the production right."""
        return "deploy_production" if self.is_production else "deploy_nonproduction"

    def allows_deploy_by(self, user) -> bool:
        """May ``user`` deploy here or roll back a deployment here?"""
        return roles.can(user, self.deploy_capability)

    def allows_batch_scoring_by(self, user) -> bool:
        """As deploying; outside production, whoever trains models may score a file too."""
        return self.allows_deploy_by(user) or (not self.is_production and roles.can(user, "launch_training"))


def may_deploy_somewhere(user) -> bool:
    """Does ``user`` hold either deploy right (the deploy form is shown to them)?"""
    return roles.can(user, "deploy_nonproduction") or roles.can(user, "deploy_production")


class DeploymentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Deployment(models.Model):
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    status = models.CharField(max_length=10, choices=DeploymentStatus.choices, default=DeploymentStatus.ACTIVE)
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                 help_text="The deployment this one replaced (what a rollback returns to).")
    is_rollback = models.BooleanField(default=False)
    note = models.CharField(max_length=300, blank=True)
    deployed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    deployed_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-deployed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model", "environment"], condition=models.Q(status="active"),
                                    name="one_active_deployment_per_model_and_environment"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} in {self.environment}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status == DeploymentStatus.ACTIVE

    def retire(self, *, by) -> None:
        """Stop serving: the caller holds this row's lock and makes the replacement in the same transaction."""
        self.status = DeploymentStatus.RETIRED
        self.retired_at = timezone.now()
        self.retired_by = by if getattr(by, "is_authenticated", False) else None
        self.save(update_fields=["status", "retired_at", "retired_by"])


class PredictionSource(models.TextChoices):
    """Who sent a logged prediction (``PredictionLog.source``; at most 10 characters).

    Monitoring reads API traffic; a person trying the model (the try-it form, or a
    token of a human user rather than a service account) is INTERACTIVE, so that it
    can be left out of drift and performance. Its value is "person" because the column
    holds 10 characters.
    """

    API = "api", "API (service account)"
    INTERACTIVE = "person", "Interactive (a person: the try-it form or a personal token)"
    BATCH = "batch", "Batch scoring"
    SMOKE = "smoke", "CI smoke test"
    DEMO = "demo", "Demo traffic"


class PredictionLog(models.Model):
    """One row per predicted instance. Written in bulk in the request that predicted it."""

    id = models.BigAutoField(primary_key=True)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+", db_index=False)
    model_version_id_logged = models.BigIntegerField(db_column="model_version_id")
    request_id = models.UUIDField(unique=True, default=uuid.uuid4)
    created_at = models.DateTimeField(default=timezone.now)
    features = models.JSONField()
    prediction = models.JSONField()
    probability = models.FloatField(null=True, blank=True, help_text="The predicted class's probability.")
    latency_ms = models.FloatField()
    instance_index = models.PositiveIntegerField(default=0)
    batch_size = models.PositiveIntegerField(default=1)
    source = models.CharField(max_length=10, default=PredictionSource.API)  # a PredictionSource value
    label = models.JSONField(null=True, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    labelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", db_index=False,
                                    help_text="Who attached the label (the four-eyes rule keeps them from approving "
                                              "a retraining on it).")

    class Meta:
        ordering = ["-id"]
        indexes = [
            # partial: unlabelled rows, nearly all of them, cost the predict path no index upkeep
            models.Index(fields=["labelled_by"], name="predlog_labelled_by",
                         condition=models.Q(labelled_by__isnull=False)),
            models.Index(fields=["deployment", "created_at"], name="predlog_deployment_time"),
            models.Index(fields=["deployment", "created_at"], name="predlog_request_start",
                         condition=models.Q(instance_index=0)),
        ]

    def __str__(self) -> str:
        return f"prediction {self.request_id}"


class PredictionError(models.Model):
    """A refused or failed predict call (its instances never reached the model)."""

    id = models.BigAutoField(primary_key=True)
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    status = models.PositiveSmallIntegerField()
    message = models.TextField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.created_at:%Y-%m-%d %H:%M}"


class BatchScore(models.Model):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="batches")
    input_file = models.FileField(upload_to="batches/", max_length=300)
    input_name = models.CharField(max_length=255)
    input_sha256 = models.CharField(max_length=64)
    output_file = models.FileField(upload_to="batches/", max_length=300, blank=True)
    output_sha256 = models.CharField(max_length=64, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"batch #{self.pk} on {self.deployment}"

    def get_absolute_url(self) -> str:
        return reverse("deployments:batch", args=[self.pk])
