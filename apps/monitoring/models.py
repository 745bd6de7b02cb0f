"""Monitor policies, drift reports, alert episodes and retraining runs."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, validate_email
from django.db import models
from django.urls import reverse
from django.utils import timezone

from apps.core.models import Job
from apps.datasets.models import DatasetVersion
from apps.deployments.models import Deployment, Environment
from apps.experiments.models import Run
from apps.ml.metrics import METRICS
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel

from .webhooks import url_problem

METHOD_CHOICES_NUMERIC = [("auto", "automatic (KS ≤ 1000 reference rows, else Wasserstein)"), ("ks", "Kolmogorov–Smirnov"),
                          ("wasserstein", "normalized Wasserstein"), ("psi", "PSI")]
METHOD_CHOICES_CATEGORICAL = [("auto", "automatic (χ² ≤ 1000 reference rows, else Jensen–Shannon)"),
                              ("chi2", "χ²"), ("jensenshannon", "Jensen–Shannon"), ("psi", "PSI")]


class RetrainPolicy(models.TextChoices):
    OFF = "off", "Off"
    ON_DRIFT = "on_drift", "When dataset drift opens an alert"
    ON_SCHEDULE = "on_schedule", "On a schedule"
    ON_PERFORMANCE = "on_performance", "When performance falls below a threshold"


class MonitorPolicy(models.Model):
    """How one model is watched in one environment (across its successive deployments)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="monitor_policies")
    environment = models.ForeignKey(Environment, on_delete=models.CASCADE, related_name="monitor_policies")
    enabled = models.BooleanField(default=True)
    schedule_minutes = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)],
                                                   help_text="Run a drift check every N minutes.")
    window_hours = models.PositiveIntegerField(default=24, validators=[MinValueValidator(1)],
                                               help_text="The window: the last N hours of predictions…")
    window_predictions = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="…or, when set, the last N predictions instead.")
    reference_dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Empty: the training data of the deployed version.")
    numeric_method = models.CharField(max_length=20, choices=METHOD_CHOICES_NUMERIC, default="auto")
    numeric_threshold = models.FloatField(null=True, blank=True, help_text="Empty: the method's default.")
    categorical_method = models.CharField(max_length=20, choices=METHOD_CHOICES_CATEGORICAL, default="auto")
    categorical_threshold = models.FloatField(null=True, blank=True, help_text="Empty: the method's default.")
    drift_share = models.FloatField(default=0.5, help_text="Dataset drift when at least this share of features drift.")
    min_rows = models.PositiveIntegerField(default=100, help_text="Fewer rows in the window: no verdict.")
    alert_emails = models.TextField(blank=True, help_text="Comma-separated addresses.")
    webhook_url = models.URLField(blank=True, help_text="Receives a JSON POST when an alert opens or resolves.")
    retrain_policy = models.CharField(max_length=20, choices=RetrainPolicy.choices, default=RetrainPolicy.ON_DRIFT)
    retrain_every_days = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)],
                                                     help_text="For scheduled retraining.")
    performance_metric = models.CharField(max_length=20, blank=True, help_text="Empty: the model's primary metric.")
    performance_threshold = models.FloatField(null=True, blank=True)
    include_production_rows = models.BooleanField(
        default=True, help_text="Retraining adds the labelled production rows of the window to the training data.")
    include_interactive = models.BooleanField(
        default=False, help_text="Drift and performance also judge predictions made from the try-it form, "
                                 "which anyone with a role can send.")
    next_run_at = models.DateTimeField(default=timezone.now)
    last_run_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Who last changed the policy (the four-eyes rule keeps them from approving what its "
                  "automation retrains).")

    class Meta:
        ordering = ["model__name", "environment__order"]
        verbose_name_plural = "monitor policies"
        constraints = [models.UniqueConstraint(fields=["model", "environment"], name="one_policy_per_model_env")]

    def __str__(self) -> str:
        return f"{self.model.name} in {self.environment.name}"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:detail", args=[self.pk])

    @property
    def email_list(self) -> list[str]:
        return [e.strip() for e in self.alert_emails.replace(";", ",").split(",") if e.strip()]

    @property
    def has_channel(self) -> bool:
        return bool(self.email_list or self.webhook_url)

    @property
    def webhook_host(self) -> str:
        return urlsplit(self.webhook_url).hostname or "" if self.webhook_url else ""

    def clean(self) -> None:
        errors = {}
        if self.drift_share is not None and not 0 < self.drift_share <= 1:
            errors["drift_share"] = "The drift share is a fraction between 0 (exclusive) and 1."
        for name in ("numeric_threshold", "categorical_threshold", "performance_threshold"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                errors[name] = "Give a finite number, or leave it empty."
        bad_emails = [e for e in self.email_list if not _is_email(e)]
        if bad_emails:
            errors["alert_emails"] = f"Not an email address: {', '.join(bad_emails[:5])}."
        if self.performance_metric and self.performance_metric not in METRICS:
            errors["performance_metric"] = f"Unknown metric {self.performance_metric!r}; use one of {', '.join(METRICS)}."
        if self.retrain_policy == RetrainPolicy.ON_PERFORMANCE and self.performance_threshold is None:
            errors["performance_threshold"] = "Retraining on performance needs a threshold."
        if self.webhook_url and (problem := url_problem(self.webhook_url)):
            errors["webhook_url"] = problem
        if errors:
            raise ValidationError(errors)



def _is_email(value: str) -> bool:
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


class ReportStatus(models.TextChoices):
    OK = "ok", "OK"
    DRIFTING = "drifting", "Drifting"
    NOT_ENOUGH_DATA = "not_enough_data", "Not enough data"


class DriftReport(models.Model):
    policy = models.ForeignKey(MonitorPolicy, on_delete=models.CASCADE, related_name="reports")
    deployment = models.ForeignKey(Deployment, null=True, on_delete=models.SET_NULL, related_name="+")
    model_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    reference_dataset_version = models.ForeignKey(DatasetVersion, null=True, on_delete=models.SET_NULL,
                                                  related_name="+")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField(db_index=True)
    rows = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=ReportStatus.choices)
    dataset_drift = models.BooleanField(null=True)
    drift_share = models.FloatField(null=True)
    drifted_features = models.JSONField(default=list)
    features = models.JSONField(default=list)
    prediction_drift = models.JSONField(default=dict, blank=True)
    performance = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-window_end", "-id"]

    def __str__(self) -> str:
        return f"{self.policy} {self.window_end:%Y-%m-%d %H:%M}: {self.status}"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:report", args=[self.pk])


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One episode: opened when a threshold is crossed, resolved when back to normal."""

    policy = models.ForeignKey(MonitorPolicy, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=[("drift", "Dataset drift"), ("performance", "Performance")])
    status = models.CharField(max_length=10, choices=AlertStatus.choices, default=AlertStatus.OPEN)
    message = models.TextField()
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(DriftReport, on_delete=models.CASCADE, related_name="+")
    resolved_by = models.ForeignKey(DriftReport, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    notifications = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["policy", "kind"], condition=models.Q(status="open"),
                                               name="one_open_alert_per_policy_and_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} alert on {self.policy} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:alert", args=[self.pk])

    def resolve(self, *, report: DriftReport) -> None:
        """Close the episode: the report ``report`` found things back to normal."""
        self.status = AlertStatus.RESOLVED
        self.resolved_at = report.window_end
        self.resolved_by = report
        self.save(update_fields=["status", "resolved_at", "resolved_by"])


class RetrainingStatus(models.TextChoices):
    STARTED = "started", "Started"
    TRAINING = "training", "Training"
    AWAITING_APPROVAL = "awaiting approval", "Awaiting approval"
    FAILED = "failed", "Failed"


UNFINISHED_RETRAINING = (RetrainingStatus.STARTED, RetrainingStatus.TRAINING)


class Retraining(models.Model):
    """Continuous training: the new data, the run, the version and the promotion request it led to."""

    policy = models.ForeignKey(MonitorPolicy, on_delete=models.CASCADE, related_name="retrainings")
    trigger = models.CharField(max_length=20, choices=[("drift", "Drift alert"), ("schedule", "Schedule"),
                                                       ("performance", "Performance alert"), ("manual", "By hand")])
    alert = models.ForeignKey(Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="retrainings")
    source_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.SET_NULL, related_name="+")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="+")
    production_rows = models.PositiveIntegerField(default=0)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="retrainings")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    promotion = models.ForeignKey(PromotionRequest, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="retrainings")
    status = models.CharField(max_length=20, choices=RetrainingStatus.choices, default=RetrainingStatus.STARTED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["policy"], condition=models.Q(status__in=UNFINISHED_RETRAINING),
                                               name="one_unfinished_retraining_per_policy")]

    def __str__(self) -> str:
        return f"retraining #{self.pk} of {self.policy}"

    def get_absolute_url(self) -> str:
        return reverse("monitoring:retraining", args=[self.pk])
