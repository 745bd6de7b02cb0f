"""Experiments and their runs. A catalog run's state lives in its Job; a run logged by the
MLflow client carries its own status, tags, metric history, inputs, artifacts and models."""

from __future__ import annotations

import math
import uuid

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
    MLFLOW = "mlflow", "MLflow client"


class ExperimentSource(models.TextChoices):
    CATALOG = "catalog", "Trained here"
    MLFLOW = "mlflow", "MLflow client"


class Lifecycle(models.TextChoices):
    ACTIVE = "active", "Active"
    DELETED = "deleted", "Deleted"


class MlflowRunStatus(models.TextChoices):
    RUNNING = "RUNNING", "Running"
    SCHEDULED = "SCHEDULED", "Scheduled"
    FINISHED = "FINISHED", "Finished"
    FAILED = "FAILED", "Failed"
    KILLED = "KILLED", "Killed"


# How an MLflow status reads in our own vocabulary (the job statuses of catalog runs).
MLFLOW_STATUS_AS_OURS = {
    MlflowRunStatus.RUNNING: "running",
    MlflowRunStatus.SCHEDULED: "queued",
    MlflowRunStatus.FINISHED: "succeeded",
    MlflowRunStatus.FAILED: "failed",
    MlflowRunStatus.KILLED: "cancelled",
}


def new_run_uuid() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def _from_ms(value: int | None):
    from datetime import UTC, datetime

    if value is None or not -(10**14) < value < 10**14:  # the client may send any int64
        return None
    return datetime.fromtimestamp(value / 1000, tz=UTC)


class Experiment(models.Model):
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=ExperimentSource.choices, default=ExperimentSource.CATALOG)
    # A catalog experiment names its data and target; an MLflow experiment's runs bring their own.
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="experiments")
    target = models.CharField(max_length=200, blank=True)
    task_type = models.CharField(max_length=20, choices=TaskType.choices, blank=True)
    primary_metric = models.CharField(max_length=20, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text="MLflow experiment tags.")
    lifecycle_stage = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
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

    @property
    def is_mlflow(self) -> bool:
        return self.source == ExperimentSource.MLFLOW

    @property
    def artifact_location(self) -> str:
        return f"mlflow-artifacts:/{self.pk}"


class Run(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    number = models.PositiveIntegerField()
    uuid = models.CharField(max_length=32, unique=True, default=new_run_uuid, editable=False,
                            help_text="The run's id in the MLflow protocol.")
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="runs")
    dataset_sha256 = models.CharField(max_length=64, blank=True)
    algorithm = models.CharField(max_length=60, blank=True)
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
    # --- what the MLflow client logs (empty for catalog runs) ---
    name = models.CharField(max_length=250, blank=True)
    mlflow_status = models.CharField(max_length=10, choices=MlflowRunStatus.choices, blank=True)
    start_time = models.BigIntegerField(null=True, blank=True, default=now_ms, help_text="Epoch milliseconds.")
    end_time = models.BigIntegerField(null=True, blank=True, help_text="Epoch milliseconds.")
    lifecycle_stage = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    client_user = models.CharField(max_length=250, blank=True, help_text="The user_id the MLflow client sent.")
    tags = models.JSONField(default=dict, blank=True)
    latest_metrics = models.JSONField(
        default=dict, blank=True,
        help_text="Per metric key, the latest point {value, timestamp, step}; ``metrics`` holds its finite value.",
    )
    model_outputs = models.JSONField(default=list, blank=True)
    artifacts_frozen = models.BooleanField(
        default=False, help_text="Set once a model version is registered from these files: they no longer change.")

    class Meta:
        ordering = ["experiment", "-number"]
        constraints = [models.UniqueConstraint(fields=["experiment", "number"], name="run_number_unique")]
        indexes = [models.Index(fields=["algorithm"])]

    def __str__(self) -> str:
        return f"{self.experiment.name} #{self.number}"

    def get_absolute_url(self) -> str:
        return reverse("experiments:run", args=[self.pk])

    @property
    def is_mlflow(self) -> bool:
        return self.source == RunSource.MLFLOW

    @property
    def artifact_uri(self) -> str:
        return f"mlflow-artifacts:/{self.artifact_root}"

    @property
    def artifact_root(self) -> str:
        return f"{self.experiment_id}/{self.uuid}/artifacts"

    @property
    def source_name(self) -> str:
        return (self.tags or {}).get("mlflow.source.name", "")

    @property
    def git_commit(self) -> str:
        return (self.tags or {}).get("mlflow.source.git.commit", "")

    @property
    def started_at(self):
        return _from_ms(self.start_time)

    @property
    def ended_at(self):
        return _from_ms(self.end_time)

    @property
    def display_name(self) -> str:
        return self.name or f"#{self.number}"

    @property
    def status(self) -> str:
        if self.mlflow_status:
            return MLFLOW_STATUS_AS_OURS[self.mlflow_status]
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


class MetricPoint(models.Model):
    """One logged value of a metric of an MLflow run (the history behind ``Run.latest_metrics``)."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_points")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # a retried log-batch must not double the history
            models.UniqueConstraint(fields=["run", "key", "step", "timestamp", "value"], name="metric_point_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.key}@{self.step}={self.value}"

    @property
    def value_json(self):
        return metric_value_json(self.value)


def metric_value_json(value: float):
    """A double as MLflow writes it: non-finite values are the strings protobuf's JSON uses."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class RunInput(models.Model):
    """A dataset a run logged with ``log_input``, linked to one of our versions when it names one."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=64)
    source_type = models.CharField(max_length=64, blank=True)
    source = models.TextField(blank=True)
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    context = models.CharField(max_length=250, blank=True, help_text="The mlflow.data.context tag: training, eval...")
    tags = models.JSONField(default=dict, blank=True)
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="mlflow_inputs")
    link_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "name", "digest", "context"], name="run_input_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.digest})"

    def schema_columns(self) -> list[dict]:
        """The columns of the logged schema (MLflow's ``{"mlflow_colspec": [...]}``), when readable."""
        import json

        try:
            parsed = json.loads(self.schema) if self.schema else {}
        except ValueError:
            return []
        columns = parsed.get("mlflow_colspec") if isinstance(parsed, dict) else None
        return [c for c in columns if isinstance(c, dict)] if isinstance(columns, list) else []

    def profile_dict(self) -> dict:
        import json

        try:
            parsed = json.loads(self.profile) if self.profile else {}
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


class LoggedModelStatus(models.TextChoices):
    PENDING = "LOGGED_MODEL_PENDING", "Uploading"
    READY = "LOGGED_MODEL_READY", "Ready"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED", "Upload failed"


def new_logged_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


class LoggedModel(models.Model):
    """An MLflow 3 logged model: the files a run's ``log_model`` uploaded, with its params and tags."""

    model_id = models.CharField(max_length=40, unique=True, default=new_logged_model_id, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="logged_models")
    source_run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=30, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=list, blank=True, help_text="Metrics logged with this model's id.")
    lifecycle_stage = models.CharField(max_length=8, choices=Lifecycle.choices, default=Lifecycle.ACTIVE)
    artifacts_frozen = models.BooleanField(
        default=False, help_text="Set once a model version is registered from these files: they no longer change.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_ms = models.BigIntegerField(default=now_ms)
    updated_ms = models.BigIntegerField(default=now_ms)

    class Meta:
        ordering = ["-created_ms", "-id"]
        indexes = [models.Index(fields=["experiment", "name"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    @property
    def artifact_root(self) -> str:
        return f"{self.experiment_id}/models/{self.model_id}/artifacts"

    @property
    def artifact_uri(self) -> str:
        return f"mlflow-artifacts:/{self.artifact_root}"


class ArtifactFile(models.Model):
    """One file uploaded through the MLflow artifact proxy, with the sha256 we computed on the way in."""

    id = models.BigAutoField(primary_key=True)
    path = models.CharField(max_length=1024, unique=True, help_text="Path under the mlflow-artifacts root.")
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE, related_name="artifact_files")
    logged_model = models.ForeignKey(LoggedModel, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="artifact_files")
    storage_name = models.CharField(max_length=300)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(run__isnull=False, logged_model__isnull=True)
                | models.Q(run__isnull=True, logged_model__isnull=False),
                name="artifact_file_has_one_owner",
            )
        ]

    def __str__(self) -> str:
        return self.path

    @property
    def owner_root(self) -> str:
        owner = self.run if self.run_id else self.logged_model
        return owner.artifact_root

    @property
    def relative_path(self) -> str:
        return self.path[len(self.owner_root) + 1:]
