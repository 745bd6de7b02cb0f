"""Experiments and their training runs. A run's state lives in its Job."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Job
from apps.datasets.models import Dataset, DatasetVersion


class TaskType(models.TextChoices):
    CLASSIFICATION = "classification", "Classification"
    REGRESSION = "regression", "Regression"


class RunSource(models.TextChoices):
    MANUAL = "manual", "Launched by hand"
    RERUN = "rerun", "Run again"
    RETRAINING = "retraining", "Continuous training"
    CI = "ci", "CI pipeline change"
    SEED = "seed", "Demo seed"


class Experiment(models.Model):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="experiments")
    target = models.CharField(max_length=200)
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    primary_metric = models.CharField(max_length=20)
    features = models.JSONField(
        default=list, blank=True, help_text="Feature names; empty means every usable column but the target."
    )
    split_seed = models.PositiveIntegerField(
        default=42, help_text="Fixes the holdout split, so every run of the experiment is scored on the same rows."
    )
    holdout_fraction = models.FloatField(default=0.2)
    cv_folds = models.PositiveSmallIntegerField(default=5)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(Lower("name"), name="experiment_name_unique_ci")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("experiments:detail", args=[self.pk])


class Run(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="runs")
    dataset_sha256 = models.CharField(max_length=64)
    algorithm = models.CharField(max_length=60)
    params = models.JSONField(default=dict, blank=True)
    param_grid = models.JSONField(default=dict, blank=True)
    spec = models.JSONField(default=dict)
    random_state = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=12, choices=RunSource.choices, default=RunSource.MANUAL)
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="trials",
        help_text="The grid-search run this trial belongs to.",
    )
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    metrics = models.JSONField(default=dict, blank=True)
    cv_scores = models.JSONField(default=dict, blank=True)
    cv_mean = models.JSONField(default=dict, blank=True)
    charts = models.JSONField(default=dict, blank=True)
    importances = models.JSONField(default=list, blank=True)
    classes = models.JSONField(default=list, blank=True)
    signature = models.JSONField(default=list, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    app_version = models.CharField(max_length=20, blank=True)
    log = models.JSONField(default=list, blank=True)
    n_train = models.PositiveIntegerField(null=True, blank=True)
    n_holdout = models.PositiveIntegerField(null=True, blank=True)
    artifact = models.FileField(upload_to="artifacts/", max_length=300, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    artifact_size = models.BigIntegerField(null=True, blank=True)
    trial_status = models.CharField(max_length=12, blank=True, help_text="Only for grid-search trials.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "-number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="run_number_unique")]
        indexes = [models.Index(fields=["algorithm"])]

    def __str__(self) -> str:
        return f"{self.experiment.name} #{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("experiments:run", args=[self.pk])

    @property
    def status(self) -> str:
        if self.parent_id:
            return self.trial_status or "succeeded"
        return self.job.status if self.job_id else "queued"

    @property
    def is_active(self) -> bool:
        return self.status in ("queued", "running")

    @property
    def primary_value(self):
        return (self.metrics or {}).get(self.experiment.primary_metric)

    @property
    def duration_seconds(self) -> float | None:
        job = self.job
        if job and job.started_at and job.finished_at:
            return (job.finished_at - job.started_at).total_seconds()
        return None
