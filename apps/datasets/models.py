"""Datasets and their content-addressed versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone


class ValidationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PASS = "pass", "Pass"
    WARN = "warn", "Warn"
    FAIL = "fail", "Fail"


class VersionStatus(models.TextChoices):
    PROCESSING = "processing", "Processing"
    READY = "ready", "Ready"
    FAILED = "failed", "Profiling failed"
    # the full read found the file unusable: its reason is kept, its bytes are not
    REJECTED = "rejected", "File refused"


class VersionSource(models.TextChoices):
    UPLOAD = "upload", "Web upload"
    API = "api", "API"
    FEEDBACK = "feedback", "Production feedback"
    SEED = "seed", "Demo seed"


class Dataset(models.Model):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    default_target = models.CharField(max_length=200, blank=True)
    validation_rules = models.JSONField(
        default=dict,
        blank=True,
        help_text=(
            'Rules checked on every version, e.g. {"max_missing_share": {"*": 0.2, "age": 0}, '
            '"ranges": {"age": {"min": 0, "max": 120}}, "allowed_categories": {"plan": ["basic", "pro"]}, '
            '"min_rows": 100, "unique_key": ["customer_id"]}'
        ),
    )
    latest_version = models.ForeignKey(
        "DatasetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="dataset_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("datasets:detail", args=[self.pk])


class DatasetVersion(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file = models.FileField(upload_to="datasets/", max_length=300)
    original_filename = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.BigIntegerField()
    format = models.CharField(max_length=10, choices=[("csv", "CSV"), ("parquet", "Parquet")])
    rows = models.BigIntegerField(null=True, blank=True)
    column_count = models.PositiveIntegerField(null=True, blank=True)
    schema = models.JSONField(default=list, blank=True)
    profile = models.JSONField(default=dict, blank=True)
    # Per column, the drift reference summary (apps.ml.drift); large, so kept apart from
    # the profile and deferred on pages that don't need it.
    reference = models.JSONField(default=dict, blank=True)
    validation = models.JSONField(default=dict, blank=True)
    validation_status = models.CharField(
        max_length=10, choices=ValidationStatus.choices, default=ValidationStatus.PENDING, db_index=True
    )
    status = models.CharField(max_length=12, choices=VersionStatus.choices, default=VersionStatus.PROCESSING)
    error = models.TextField(blank=True)
    note = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=10, choices=VersionSource.choices, default=VersionSource.UPLOAD)
    override_reason = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="dataset_version_number_unique"),
            models.UniqueConstraint(fields=["dataset", "sha256"], name="dataset_version_content_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("datasets:version", args=[self.pk])

    @property
    def was_read(self) -> bool:
        """The worker has read the whole file once (the schema comes from that read)."""
        return bool(self.schema)

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]

    @property
    def is_overridden(self) -> bool:
        return bool(self.overridden_at)

    @property
    def usable_for_training(self) -> bool:
        """Ready, and its validation passed or warned, or a failure was overridden."""
        if self.status != VersionStatus.READY:
            return False
        return self.validation_status in (ValidationStatus.PASS, ValidationStatus.WARN) or self.is_overridden

    def column(self, name: str) -> dict | None:
        return next((c for c in self.schema if c["name"] == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c["name"] for c in self.schema]
