"""Monitoring a model trained elsewhere: the data its drift is judged against, and telling its owner
to retrain it (its code is not ours, so no retraining runs here)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.mail import send_mail

from apps.datasets.models import DatasetVersion
from apps.registry.evaluation import latest_evaluation_of, training_input_of
from apps.registry.models import ModelVersion

from .models import Alert, MonitorPolicy

OWNER_EVENT = "retrain_elsewhere"


@dataclass(frozen=True)
class DriftReference:
    """What a window of a deployment is compared with, and why that data (said on the monitoring page)."""

    dataset_version: DatasetVersion | None
    target: str
    task_type: str
    why: str


def drift_reference_of(policy: MonitorPolicy, version: ModelVersion) -> DriftReference:
    """The policy's reference if it names one, else the deployed version's training data; for a version
    trained elsewhere, the training data its run logged with mlflow.log_input, else its evaluation data."""
    if not version.is_external:
        experiment = version.run.experiment
        chosen = policy.reference_dataset_version
        return DriftReference(chosen or version.run.dataset_version, experiment.target, experiment.task_type,
                              "chosen in the monitor policy" if chosen else "the training data of the deployed version")
    evaluation = latest_evaluation_of(version)
    target, task_type = (evaluation.evaluation_target if evaluation else ""), version.model.task_type
    training = training_input_of(version.run)
    if policy.reference_dataset_version:
        return DriftReference(policy.reference_dataset_version, target, task_type, "chosen in the monitor policy")
    if training is not None:
        return DriftReference(training.dataset_version, target, task_type,
                              f"the training data the run logged with mlflow.log_input ({training.name!r})")
    if evaluation is not None:
        return DriftReference(evaluation.evaluation_dataset_version, target, task_type,
                              f"the evaluation data of promotion request #{evaluation.pk}: the run logged no "
                              "training data of ours")
    return DriftReference(None, target, task_type, f"{version} was trained elsewhere, its run logged no training "
                          "data of ours and no promotion named evaluation data: choose a reference dataset version "
                          "in the monitor policy.")


def expected_metrics(version: ModelVersion) -> dict:
    """What live performance is compared with: a catalog version's holdout metrics; for a version trained
    elsewhere, what we measured on its evaluation data at promotion (never the metrics the client logged)."""
    if not version.is_external:
        return version.metrics
    evaluation = latest_evaluation_of(version)
    return (((evaluation.evidence or {}).get("challenger") or {}).get("metrics") or {}) if evaluation else {}


def retrain_elsewhere_text(version: ModelVersion) -> str:
    return (f"{version} was trained outside this system (logged with the MLflow client), so it cannot be retrained "
            "here: retrain it with your own code, log the new version with the MLflow client and request its "
            f"promotion (CI can send it as a pipeline change: POST /api/v1/models/{version.model_id}/pipeline-changes/ "
            'with {"source_commit", "model_version"}).')


def notify_owner(alert: Alert) -> dict:
    """An alert on a model trained elsewhere goes to its owner, with the links to act on, instead of a retraining."""
    version = alert.opened_by.model_version
    owner = version.model.owner or version.created_by
    if owner is None or not owner.email:
        return {"channel": "owner", "ok": False, "error": "the model's owner has no email address"}
    try:
        send_mail(subject=f"[MLOps] {alert.get_kind_display()} alert on {alert.policy}: retrain {version.model.name}",
                  message=f"{alert.message}\n\n{retrain_elsewhere_text(version)}\n\nAlert: {alert.get_absolute_url()}"
                          f"\nReport: {alert.opened_by.get_absolute_url()}\nVersion: {version.get_absolute_url()}\n",
                  from_email=None, recipient_list=[owner.email])
    except Exception as exc:  # recorded, like the policy's own channels
        return {"channel": "owner", "ok": False, "to": [owner.email], "error": str(exc)[:300]}
    return {"channel": "owner", "ok": True, "to": [owner.email]}
