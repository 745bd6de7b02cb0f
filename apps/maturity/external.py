"""CI pipeline changes of a model trained elsewhere: "CI logged version N at commit X".

Its training ran in the team's own CI, which logged the version with the MLflow client; the
change takes that as its train step (checked against the run's ``mlflow.source.git.commit``) and
continues as any change does: staging request and its gates (on the evaluation data, named or
proposed as for any request), approval by policy, staging deployment, smoke test on rows of that
evaluation data, production request.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.api_errors import Conflict
from apps.core.services import audit_record
from apps.datasets.services import load_version_frame
from apps.ml.prepare import canonical_labels
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel, Stage
from apps.registry.services import promotion_request

from .models import PipelineChange, PipelineStep

MIN_COMMIT_PREFIX = 7


def same_commit(logged: str, sent: str) -> bool:
    """Whether CI's commit and the run's tag name the same commit (a short sha of at least 7 characters counts)."""
    logged, sent = logged.strip().lower(), sent.strip().lower()
    if not logged or not sent:
        return False
    short, full = sorted((logged, sent), key=len)
    return full.startswith(short) and len(short) >= min(MIN_COMMIT_PREFIX, len(full))


def _logged_version(model: RegisteredModel, number, source_commit: str) -> ModelVersion:
    try:
        number = int(number)
    except (TypeError, ValueError):
        raise ValidationError({"model_version": "model_version is the number of the version CI logged."}) from None
    version = model.versions.select_related("run", "model").filter(version=number).first()
    if version is None:
        raise ValidationError({"model_version": f"{model.name} has no version {number}."})
    if not version.is_external:
        raise ValidationError({"model_version": f"{version} was trained here: send the change's spec instead, and "
                                                "this system trains it."})
    commit = version.run.git_commit
    if not commit:
        raise ValidationError({"source_commit": (
            f"The run of {version} logged no mlflow.source.git.commit tag, so commit {source_commit!r} cannot be "
            "checked against it: log the run from the CI checkout (or mlflow.set_tag it).")})
    if not same_commit(commit, source_commit):
        raise ValidationError({"source_commit": f"The run of {version} was logged at commit {commit[:40]}, "
                                                f"not {source_commit[:40]}."})
    if PipelineChange.objects.filter(model_version=version).exists():
        raise Conflict(f"{version} already came through a pipeline change.")
    return version


def pipeline_change_for_logged_version(*, user, model: RegisteredModel, source_commit: str, model_version,
                                       evaluation_dataset_version=None, evaluation_target: str = "") -> PipelineChange:
    """The train step is what CI already did; the staging request opens at once (its gates run as a job)."""
    version = _logged_version(model, model_version, source_commit)
    with transaction.atomic():
        change = PipelineChange.objects.create(
            model=model, source_commit=source_commit, run=version.run, model_version=version, created_by=user,
            spec={"logged_version": version.version})
        now = timezone.now()
        PipelineStep.objects.create(change=change, key="train", order=1, status="succeeded", started_at=now,
                                    finished_at=now, detail=f"CI logged {version} at commit {source_commit} "
                                                            f"(run {version.run.uuid})")
        promotion = promotion_request(
            user=user, version=version, target_stage=Stage.STAGING,
            reason=f"CI pipeline change {source_commit} (#{change.pk}): CI logged {version}; gates decide whether "
                   "it is staged.",
            evaluation_dataset_version=evaluation_dataset_version, evaluation_target=evaluation_target)
        PipelineChange.objects.filter(pk=change.pk).update(staging_promotion=promotion, spec={
            "logged_version": version.version, "evaluation_dataset_version": promotion.evaluation_dataset_version_id,
            "evaluation_target": promotion.evaluation_target})
        PipelineStep.objects.create(change=change, key="gates", order=2, job=promotion.job,
                                    detail=f"{version} → staging: request #{promotion.pk} on "
                                           f"{promotion.evaluation_dataset_version}")
        audit_record(actor=user, action="pipeline_change.create", obj=change,
                     after={"source_commit": source_commit, "model_version": version.pk, "promotion": promotion.pk})
    change.refresh_from_db()
    return change


def evaluation_of_change(change: PipelineChange) -> dict:
    """The evaluation data the change's staging request was judged on (the production request reuses it)."""
    staging = PromotionRequest.objects.filter(pk=change.staging_promotion_id).first()
    if staging is None or staging.evaluation_dataset_version_id is None:
        return {}
    return {"evaluation_dataset_version": staging.evaluation_dataset_version_id,
            "evaluation_target": staging.evaluation_target}


def smoke_rows(change: PipelineChange, limit: int) -> tuple[pd.DataFrame, np.ndarray, str]:
    """Rows of the staging request's evaluation data with a target, their truth as text (or numbers)."""
    staging = PromotionRequest.objects.select_related("evaluation_dataset_version", "model_version__model").get(
        pk=change.staging_promotion_id)
    target = staging.evaluation_target
    frame = load_version_frame(staging.evaluation_dataset_version)
    rows = frame[frame[target].notna()].iloc[:limit]
    task_type = staging.model_version.model.task_type
    truth = canonical_labels(rows[target]) if task_type == "classification" else (
        pd.to_numeric(rows[target], errors="coerce").to_numpy(dtype=float))
    return rows, truth, task_type
