"""Maturity workflows: snapshots of every model's level, and CI pipeline changes.

A pipeline change is a chain of steps, each a visible Job, continued by signals so no
worker slot waits on another job:

  train (the run's job) --run_trained--> register + staging request (the gates job)
  --gates recorded--> approve staging by policy --> deploy to staging --> smoke test
  --> production promotion request (an analyst decides).
"""

from __future__ import annotations

import logging
import math
import time
from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.accounts.services import system_user
from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.jobs import JobContext, JobFailed, TransientJobError
from apps.core.models import Job, JobStatus
from apps.core.services import audit_record, job_create
from apps.datasets.models import DatasetVersion
from apps.datasets.services import load_version_frame
from apps.deployments.models import Deployment, DeploymentStatus, Environment
from apps.deployments.services import deployment_create, environments_ensure, predict_and_log, target_of
from apps.experiments.models import Run, RunSource
from apps.experiments.services import run_launch
from apps.ml import metrics as M
from apps.ml.train import TrainingSpec, holdout_split
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel, Stage
from apps.registry.services import model_version_register, promotion_approve, promotion_request

from .criteria import evaluate_all
from .external import evaluation_of_change, pipeline_change_for_logged_version, smoke_rows
from .models import (
    STEP_KEYS,
    MaturitySettings,
    MaturitySnapshot,
    PipelineChange,
    PipelinePolicy,
    PipelineStatus,
    PipelineStep,
)

logger = logging.getLogger(__name__)

SNAPSHOT_JOB = "maturity.snapshot"
PIPELINE_STEP_JOB = "maturity.pipeline_step"
POLICY_APPROVER_USERNAME = "mlops-policy"
STEP_ORDER = {key: i + 1 for i, (key, _) in enumerate(STEP_KEYS)}
SMOKE_MAX_ROWS = 500


# --- snapshots --------------------------------------------------------------------------------


def snapshot_all(*, trigger: str, at: datetime | None = None, job: Job | None = None) -> list[MaturitySnapshot]:
    """Compute every model's maturity (as the records stood at ``at``) and keep it."""
    taken_at = at or timezone.now()
    results = evaluate_all(at=taken_at)
    rows = [MaturitySnapshot(model=r.model, taken_at=taken_at, date=timezone.localdate(taken_at), level=r.level,
                             progress=r.progress, criteria=r.criteria, trigger=trigger, job=job) for r in results]
    with transaction.atomic():
        MaturitySnapshot.objects.bulk_create(rows)
        audit_record(actor=None, action="maturity.snapshot", after={
            "trigger": trigger, "at": taken_at.isoformat(), "levels": {r.model.name: r.level for r in results}})
    return rows


def snapshot_request(*, user) -> Job:
    """"Recompute now": any role that may read the dashboard (it only reads records and keeps the result)."""
    roles.require(user, "view_dashboard")
    with transaction.atomic():
        pending = Job.objects.filter(kind=SNAPSHOT_JOB, status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).first()
        if pending is not None:
            return pending
        job = job_create(kind=SNAPSHOT_JOB, created_by=user, params={"trigger": "manual"},
                         message="Waiting to recompute maturity")
        audit_record(actor=user, action="maturity.recompute", obj=job)
    return job


def daily_snapshot_due(*, now: datetime | None = None) -> Job | None:
    """Beat: queue today's snapshot job once a day."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    with transaction.atomic():
        if MaturitySnapshot.objects.filter(date=today, trigger="daily").exists():
            return None
        if Job.objects.filter(kind=SNAPSHOT_JOB, params__trigger="daily", params__date=today.isoformat()).exists():
            return None
        return job_create(kind=SNAPSHOT_JOB, params={"trigger": "daily", "date": today.isoformat()},
                          message="Daily maturity snapshot")


def snapshot_backfill(*, days: int, now: datetime | None = None) -> int:
    """Daily snapshots for the past ``days`` days, each computed from the records as they stood at
    the end of that day (rows created later are ignored); days already snapshotted are skipped."""
    now = now or timezone.now()
    done = set(MaturitySnapshot.objects.values_list("date", flat=True).distinct())
    written = 0
    for back in range(days, 0, -1):
        day_end = timezone.localtime(now).replace(hour=23, minute=59, second=0, microsecond=0) - timedelta(days=back)
        if timezone.localdate(day_end) in done:
            continue
        written += len(snapshot_all(trigger="backfill", at=day_end))
    return written


# --- CI pipeline changes ----------------------------------------------------------------------


def policy_approver():
    """The account that approves staging by policy: it holds only the right to decide promotions,
    cannot log in, and is never a person (so the four-eyes rule, which is for people, still holds)."""
    from django.contrib.auth.models import Permission

    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=POLICY_APPROVER_USERNAME, defaults={"first_name": "Staging", "last_name": "auto-approval policy"})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
        user.user_permissions.add(Permission.objects.get(content_type__app_label="core", codename="decide_promotion"))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def pipeline_policy_of(model: RegisteredModel) -> PipelinePolicy:
    policy, _ = PipelinePolicy.objects.get_or_create(model=model)
    return policy


def pipeline_policy_set(*, user, model: RegisteredModel, auto_approve_staging: bool) -> PipelinePolicy:
    if not user.is_staff:
        raise ValidationError("Only admins set a model's pipeline policy.")
    with transaction.atomic():
        policy = pipeline_policy_of(model)
        before = {"auto_approve_staging": policy.auto_approve_staging}
        policy.auto_approve_staging = auto_approve_staging
        policy.updated_by = user
        policy.updated_at = timezone.now()
        policy.save()
        audit_record(actor=user, action="pipeline_policy.update", obj=policy, before=before,
                     after={"auto_approve_staging": auto_approve_staging})
    return policy


def _experiment_of(model: RegisteredModel):
    version = (model.versions.filter(stage=Stage.PRODUCTION).select_related("run__experiment").first()
               or model.versions.select_related("run__experiment").order_by("-version").first())
    return version.run.experiment if version else None


def _latest_usable(dataset) -> DatasetVersion | None:
    for version in dataset.versions.filter(status="ready").order_by("-number"):
        if version.usable_for_training:
            return version
    return None


def pipeline_change_create(*, user, model: RegisteredModel, source_commit: str, spec: dict | None = None,
                           model_version: int | None = None, evaluation_dataset_version: int | None = None,
                           evaluation_target: str = "") -> PipelineChange:
    """CI pushed a change: train it (a run with source "ci"); the rest follows by itself. For a model
    trained elsewhere CI sends the version it logged (``model_version``) instead of a spec."""
    for capability in ("launch_training", "register_model", "request_promotion"):
        roles.require(user, capability, message=f"A CI token must belong to an ML engineer ({capability.replace('_', ' ')}).")
    source_commit = (source_commit or "").strip()
    if not source_commit or len(source_commit) > 100:
        raise ValidationError({"source_commit": "Send the commit id of the change (1 to 100 characters)."})
    if model_version is not None:
        if spec:
            raise ValidationError({"spec": "Send either a spec (trained here) or the model_version CI logged, "
                                           "not both."})
        return pipeline_change_for_logged_version(
            user=user, model=model, source_commit=source_commit, model_version=model_version,
            evaluation_dataset_version=evaluation_dataset_version, evaluation_target=evaluation_target)
    if not isinstance(spec, dict) or not isinstance(spec.get("algorithm"), str):
        raise ValidationError({"spec": "Send a spec with an algorithm (and optional params, dataset_version)."})
    params = spec.get("params") or {}
    if not isinstance(params, dict):
        raise ValidationError({"spec": "spec.params must be an object."})
    experiment = _experiment_of(model)
    if experiment is None:
        raise ValidationError({"model": f"{model.name} has no version yet, so its experiment is unknown; "
                                        "register a first run by hand."})
    if spec.get("dataset_version") is not None:
        dataset_version = DatasetVersion.objects.filter(pk=spec["dataset_version"],
                                                        dataset_id=experiment.dataset_id).first()
        if dataset_version is None:
            raise ValidationError({"spec": f"dataset_version {spec['dataset_version']} is not a version of "
                                           f"{experiment.dataset.name}."})
    else:
        dataset_version = _latest_usable(experiment.dataset)
        if dataset_version is None:
            raise ValidationError({"spec": f"{experiment.dataset.name} has no version usable for training."})
    with transaction.atomic():
        run = run_launch(user=user, experiment=experiment, dataset_version=dataset_version,
                         algorithm=spec["algorithm"], params=params, random_state=int(spec.get("random_state") or 0),
                         source=RunSource.CI)
        change = PipelineChange.objects.create(
            model=model, source_commit=source_commit, run=run, created_by=user,
            spec={"algorithm": spec["algorithm"], "params": run.params, "dataset_version": dataset_version.pk})
        PipelineStep.objects.create(change=change, key="train", order=STEP_ORDER["train"], job=run.job,
                                    detail=f"Run {run} on {dataset_version}")
        audit_record(actor=user, action="pipeline_change.create", obj=change,
                     after={"source_commit": source_commit, "run": run.pk, "spec": change.spec})
    return change


def _step(change: PipelineChange, key: str, *, status: str = "running", job: Job | None = None,
          detail: str = "") -> PipelineStep:
    step, _ = PipelineStep.objects.update_or_create(change=change, key=key, defaults={
        "order": STEP_ORDER[key], "status": status, "job": job, "detail": detail, "started_at": timezone.now(),
        "finished_at": None if status in ("running", "waiting") else timezone.now()})
    return step


def _step_done(change: PipelineChange, key: str, *, status: str = "succeeded", detail: str | None = None) -> None:
    fields = {"status": status, "finished_at": timezone.now()}
    if detail is not None:
        fields["detail"] = detail
    PipelineStep.objects.filter(change=change, key=key).update(**fields)


def pipeline_fail(*, change: PipelineChange, step: str, reason: str) -> None:
    with transaction.atomic():
        PipelineChange.objects.filter(pk=change.pk).update(status=PipelineStatus.FAILED, reason=reason[:2000],
                                                           finished_at=timezone.now())
        PipelineStep.objects.filter(change=change, key=step).update(status="failed", detail=reason[:2000],
                                                                     finished_at=timezone.now())
        audit_record(actor=None, action="pipeline_change.failed", obj=change, after={"step": step}, note=reason)


def _next(change: PipelineChange, key: str, message: str) -> Job:
    with transaction.atomic():
        job = job_create(kind=PIPELINE_STEP_JOB, created_by=change.created_by, target=change,
                         params={"step": key}, message=message)
        _step(change, key, job=job)
    return job


def pipeline_after_train(*, run: Run) -> PipelineChange | None:
    """run_trained: register the CI run and request staging; the registry runs the gates as a job."""
    change = PipelineChange.objects.select_related("model", "created_by").filter(
        run=run, status=PipelineStatus.RUNNING).first()
    if change is None or change.model_version_id:
        return change
    primary = run.experiment.primary_metric
    _step_done(change, "train", detail=f"Run {run} trained: {primary} {M.clean_float(run.metrics.get(primary))}")
    try:
        with transaction.atomic():
            version = model_version_register(user=change.created_by, run=run, model_name=change.model.name,
                                             description=f"CI pipeline change {change.source_commit}")
            promotion = promotion_request(
                user=change.created_by, version=version, target_stage=Stage.STAGING,
                reason=f"CI pipeline change {change.source_commit} (#{change.pk}): trained automatically; "
                       "gates decide whether it is staged.")
            PipelineChange.objects.filter(pk=change.pk).update(model_version=version, staging_promotion=promotion)
            _step(change, "gates", job=promotion.job, detail=f"{version} → staging: request #{promotion.pk}")
            audit_record(actor=change.created_by, action="pipeline_change.registered", obj=change,
                         after={"model_version": version.pk, "promotion": promotion.pk})
    except Exception as exc:  # a readable reason on the change, never a crashed training job
        logger.warning("pipeline change could not register its run", extra={"change": change.pk}, exc_info=True)
        pipeline_fail(change=change, step="gates", reason=f"Registering the run or requesting staging failed: "
                                                           f"{'; '.join(getattr(exc, 'messages', [str(exc)]))}")
    change.refresh_from_db()
    return change


def pipeline_after_gates(*, promotion_id: int) -> None:
    """The staging request's gates were recorded: queue the policy approval step."""
    change = PipelineChange.objects.filter(staging_promotion_id=promotion_id, status=PipelineStatus.RUNNING).first()
    if change is None or PipelineStep.objects.filter(change=change, key="approve_staging").exists():
        return
    _next(change, "approve_staging", "Waiting to approve staging by policy")


def pipeline_after_human_approval(*, promotion_id: int) -> None:
    """An analyst approved a staging request the policy left to people: continue to deployment."""
    change = PipelineChange.objects.filter(staging_promotion_id=promotion_id, status=PipelineStatus.WAITING).first()
    if change is None:
        return
    with transaction.atomic():
        PipelineChange.objects.filter(pk=change.pk).update(status=PipelineStatus.RUNNING, reason="")
        _step_done(change, "approve_staging", detail="Approved by an analyst.")
        _next(change, "deploy_staging", "Waiting to deploy to staging")


def pipeline_step_run(*, change: PipelineChange, step: str, ctx: JobContext) -> dict:
    handler = {"approve_staging": _approve_staging, "deploy_staging": _deploy_staging,
               "smoke_test": _smoke_test, "request_production": _request_production}.get(step)
    if handler is None:
        raise JobFailed(f"Unknown pipeline step {step!r}.")
    if change.status not in (PipelineStatus.RUNNING,):
        raise JobFailed(f"Pipeline change #{change.pk} is {change.status}; step {step} skipped.")
    return handler(change, ctx)


def _approve_staging(change: PipelineChange, ctx: JobContext) -> dict:
    promotion = PromotionRequest.objects.select_related("job", "model_version").get(pk=change.staging_promotion_id)
    deadline = time.monotonic() + 20
    while not promotion.gates_done:  # the gates job is marked done a moment after its results commit
        if time.monotonic() > deadline:
            raise TransientJobError("the staging gates have not finished yet")
        time.sleep(0.2)
        promotion = PromotionRequest.objects.select_related("job", "model_version").get(pk=promotion.pk)
    failed = promotion.failed_gates
    _step_done(change, "gates", status="failed" if failed else "succeeded",
               detail=f"{len(promotion.gates) - len(failed)} of {len(promotion.gates)} gates passed "
                      f"(request #{promotion.pk})")
    if failed:
        raise JobFailed(f"Gates failed ({', '.join(g['name'] for g in failed)}): the change is not staged. "
                        f"Request #{promotion.pk} waits for an analyst's decision.")
    policy = pipeline_policy_of(change.model)
    if not policy.auto_approve_staging:
        with transaction.atomic():
            reason = (f"Every gate passed, but auto-approval of staging is off for {change.model.name}: an analyst "
                      f"must approve request #{promotion.pk} (the pipeline continues after that).")
            PipelineChange.objects.filter(pk=change.pk).update(status=PipelineStatus.WAITING, reason=reason)
            _step_done(change, "approve_staging", status="waiting", detail=reason)
            audit_record(actor=None, action="pipeline_change.waiting", obj=change, note=reason)
        return {"message": "Waiting for an analyst to approve staging"}
    setter = policy.updated_by.get_username() if policy.updated_by else "an admin"
    comment = (f"Approved by policy: all {len(promotion.gates)} gates passed and \"auto-approve staging\" is on for "
               f"{change.model.name} (set by {setter} on {policy.updated_at:%Y-%m-%d}). CI change "
               f"{change.source_commit}.")
    with transaction.atomic():
        promotion_approve(user=policy_approver(), promotion=promotion, comment=comment)
        PipelineChange.objects.filter(pk=change.pk).update(auto_approved=True)
        _step_done(change, "approve_staging", detail=comment)
        audit_record(actor=None, action="pipeline_change.auto_approved", obj=change, note=comment)
    _next(change, "deploy_staging", "Waiting to deploy to staging")
    return {"message": "Staging approved by policy"}


def _deploy_staging(change: PipelineChange, ctx: JobContext) -> dict:
    environments_ensure()
    version = ModelVersion.objects.select_related("model").get(pk=change.model_version_id)
    environment = Environment.objects.filter(is_production=False, name="staging").first() or \
        Environment.objects.filter(is_production=False).order_by("order").first()
    if environment is None:
        raise JobFailed("There is no non-production environment to deploy to.")
    try:
        deployment = deployment_create(user=system_user(), version=version, environment=environment,
                                       note=f"CI pipeline change #{change.pk} ({change.source_commit[:40]})")
    except Conflict:
        deployment = Deployment.objects.get(model=version.model, environment=environment,
                                            status=DeploymentStatus.ACTIVE)
    with transaction.atomic():
        PipelineChange.objects.filter(pk=change.pk).update(deployment=deployment)
        _step_done(change, "deploy_staging", detail=f"{version} active in {environment.name} (deployment #{deployment.pk})")
        audit_record(actor=None, action="pipeline_change.deployed", obj=change, after={"deployment": deployment.pk})
    _next(change, "smoke_test", "Waiting to smoke-test staging")
    return {"message": f"Deployed {version} to {environment.name}"}


def _json_value(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and not math.isfinite(value) else value
    return value


def smoke_test(*, change: PipelineChange, deployment: Deployment, ctx: JobContext | None = None) -> dict:
    """Predict the run's holdout rows through the real predict-and-log path of the staging deployment and
    score the answers against the model's threshold."""
    version = deployment.model_version
    model = version.model
    rows, truth, task_type = _smoke_rows(change, version)
    names = [f["name"] for f in version.signature]
    instances = [{k: _json_value(v) for k, v in record.items()} for record in rows[names].to_dict("records")]
    if ctx:
        ctx.progress(30, f"Sending {len(instances)} holdout rows to {deployment.environment.name}")
    body = predict_and_log(target=target_of(deployment), instances=instances, source="smoke")
    predictions = body["predictions"]
    answered = sum(p is not None for p in predictions)
    metric = model.threshold_metric
    if task_type == "classification":
        y = np.array([str(v) for v in truth], dtype=object)
        labels = sorted({str(c) for c in version.classes} | set(y.tolist()))
        probabilities = body.get("probabilities")
        proba = (np.array([[p.get(label, 0.0) for label in labels] for p in probabilities])
                 if probabilities else None)
        scores = M.classification_metrics(y, np.array([str(p) for p in predictions], dtype=object), proba, labels)
    else:
        scores = M.regression_metrics(np.array(truth, dtype=float), np.array(predictions, dtype=float))
    value = M.clean_float(scores.get(metric))
    higher = model.threshold_higher_is_better
    meets = value is not None and (value >= model.threshold_value if higher else value <= model.threshold_value)
    return {"deployment": deployment.pk, "environment": deployment.environment.name, "rows": len(instances),
            "answered": answered, "metric": metric, "value": value, "threshold": model.threshold_value,
            "higher_is_better": higher, "passed": answered == len(instances) and len(instances) > 0 and meets,
            "request_ids": body["request_ids"][:5]}


def _smoke_rows(change: PipelineChange, version: ModelVersion):
    """The rows a smoke test sends: the run's holdout, or for a version trained elsewhere, its evaluation data."""
    if version.is_external:
        return smoke_rows(change, SMOKE_MAX_ROWS)
    spec = TrainingSpec.from_dict(version.run.spec)
    frame = load_version_frame(version.run.dataset_version)
    _, hold = holdout_split(frame, spec)
    rows = frame.iloc[hold[:SMOKE_MAX_ROWS]]
    return rows, rows[spec.target].tolist(), spec.task_type


def _smoke_test(change: PipelineChange, ctx: JobContext) -> dict:
    deployment = Deployment.objects.select_related("environment", "model_version__model",
                                                   "model_version__run__dataset_version").get(pk=change.deployment_id)
    result = smoke_test(change=change, deployment=deployment, ctx=ctx)
    summary = (f"{result['answered']} of {result['rows']} holdout rows answered by {result['environment']}; "
               f"{result['metric']} {result['value']} vs threshold {result['threshold']}")
    PipelineChange.objects.filter(pk=change.pk).update(smoke=result)
    if not result["passed"]:
        raise JobFailed(f"Smoke test failed: {summary}.")
    with transaction.atomic():
        PipelineChange.objects.filter(pk=change.pk).update(smoke_passed_at=timezone.now())
        _step_done(change, "smoke_test", detail=f"Passed: {summary}")
        audit_record(actor=None, action="pipeline_change.smoke_test", obj=change, after=result)
    _next(change, "request_production", "Waiting to open the production request")
    return {"message": f"Smoke test passed: {summary}", "smoke": result}


def _request_production(change: PipelineChange, ctx: JobContext) -> dict:
    version = ModelVersion.objects.get(pk=change.model_version_id)
    smoke = change.smoke or {}
    system = system_user()
    with transaction.atomic():
        promotion = promotion_request(
            user=system, version=version, target_stage=Stage.PRODUCTION, on_behalf_of=change.created_by,
            **(evaluation_of_change(change) if version.is_external else {}),
            reason=f"CI pipeline change {change.source_commit} (#{change.pk}): gates passed, staged automatically, "
                   f"smoke test passed ({smoke.get('metric')} {smoke.get('value')} on {smoke.get('rows')} holdout rows "
                   "through the staging deployment).")
        reason = f"Production request #{promotion.pk} waits for an analyst's approval."
        PipelineChange.objects.filter(pk=change.pk).update(production_promotion=promotion,
                                                           status=PipelineStatus.SUCCEEDED, reason=reason,
                                                           finished_at=timezone.now())
        _step_done(change, "request_production", detail=f"Request #{promotion.pk} opened; its gates run as job "
                                                        f"#{promotion.job_id}.")
        audit_record(actor=system, action="pipeline_change.production_requested", obj=change,
                     after={"promotion": promotion.pk})
    return {"message": f"Production request #{promotion.pk} opened", "promotion": promotion.pk}


def pipeline_sync(change: PipelineChange) -> PipelineChange:
    """A step whose job ended badly without its handler reporting (training failed): fail the change."""
    if change.status != PipelineStatus.RUNNING:
        return change
    for step in change.steps.select_related("job"):
        if step.status == "running" and step.job and step.job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            pipeline_fail(change=change, step=step.key,
                          reason=f"{step.get_key_display()}: job #{step.job_id} {step.job.status}: "
                                 f"{step.job.error or step.job.message}")
            change.refresh_from_db()
            break
    return change


def settings_load() -> MaturitySettings:
    return MaturitySettings.load()
