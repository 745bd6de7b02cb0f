"""Writes and workflows for experiments: create, launch a training run (or a grid of
trials), run it in a job, cancel, run again."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.utils import timezone

from apps.core import roles
from apps.core.jobs import JobCancelled, JobContext
from apps.core.models import Job
from apps.core.services import audit_record, job_cancel, job_create
from apps.datasets.models import Dataset, DatasetVersion, VersionStatus
from apps.datasets.services import load_version_frame
from apps.ml import metrics as ml_metrics
from apps.ml.catalog import clean_params, expand_grid, get_algorithm
from apps.ml.errors import SpecError
from apps.ml.persist import dump_pipeline, sha256_bytes
from apps.ml.train import FEATURE_ROLES, TrainingCancelled, TrainingSpec, run_training, select_best

from .models import Experiment, Run, RunSource, TaskType
from .signals import run_trained

logger = logging.getLogger(__name__)

TRAIN_JOB = "experiments.train"
REGRESSION_MIN_DISTINCT = 20


def _target_problem(version: DatasetVersion, target: str, task_type: str | None) -> str | None:
    """Why ``target`` cannot be learnt from ``version``, judged from its stored profile."""
    if not version.was_read:
        return f"{version} is still being read ({version.status}); wait for its profile, then choose the target."
    column = version.column(target)
    if column is None:
        return f"The target {target!r} is not a column of {version} (columns: {', '.join(version.column_names)})."
    stats = (version.profile or {}).get("columns", {}).get(target)
    if stats is None:
        return None  # not profiled yet: the job checks again on the data
    if not stats.get("count"):
        return f"The target {target!r} has no values in {version}: no rows are left after dropping missing targets."
    if stats.get("distinct", 0) < 2:
        return f"The target {target!r} is constant in {version} (a single value); there is nothing to learn."
    if task_type == TaskType.REGRESSION and column.get("role") != "numeric":
        return f"The target {target!r} is {column.get('role')} text, so it cannot be a regression target."
    return None


def _latest_version(dataset: Dataset) -> DatasetVersion | None:
    versions = DatasetVersion.objects.filter(dataset_id=dataset.pk).exclude(status=VersionStatus.REJECTED)
    return versions.order_by("-number").first()


def infer_task_type(version: DatasetVersion, target: str) -> str:
    column = version.column(target) or {}
    stats = (version.profile or {}).get("columns", {}).get(target, {})
    if column.get("role") == "numeric" and stats.get("distinct", 0) > REGRESSION_MIN_DISTINCT:
        return TaskType.REGRESSION
    return TaskType.CLASSIFICATION


def default_primary_metric(task_type: str) -> str:
    return "f1" if task_type == TaskType.CLASSIFICATION else "rmse"


def features_for(experiment: Experiment, version: DatasetVersion) -> list[dict]:
    """The features a run trains on: the experiment's list, else every usable column."""
    wanted = set(experiment.features or [])
    features = []
    for column in version.schema:
        name, role = column["name"], column.get("role")
        if name == experiment.target:
            continue
        if wanted and name not in wanted:
            continue
        if role in FEATURE_ROLES:
            features.append({"name": name, "role": role})
    missing = wanted - set(version.column_names)
    if missing:
        raise ValidationError({"dataset_version": f"{version} lacks the feature columns {sorted(missing)}."})
    if not features:
        raise ValidationError({"dataset_version": f"{version} has no numeric, categorical or boolean feature."})
    return features


def experiment_create(
    *,
    user,
    name: str,
    dataset: Dataset,
    target: str,
    task_type: str = "",
    primary_metric: str = "",
    description: str = "",
    split_seed: int = 42,
) -> Experiment:
    roles.require(user, "launch_training")
    name = (name or "").strip()
    errors = {}
    if not name:
        errors["name"] = "An experiment needs a name."
    elif Experiment.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).exists():
        errors["name"] = f"An experiment named {name!r} already exists."
    version = _latest_version(dataset)
    if version is None:
        errors["dataset"] = f"The dataset {dataset.name!r} has no version yet; upload one first."
    if errors:
        raise ValidationError(errors)
    target = (target or "").strip()
    if not target:
        raise ValidationError({"target": "Choose the target column to predict."})
    if task_type and task_type not in TaskType.values:
        raise ValidationError({"task_type": f"task_type must be one of {', '.join(TaskType.values)}."})
    task_type = task_type or infer_task_type(version, target)
    problem = _target_problem(version, target, task_type)
    if problem:
        raise ValidationError({"target": problem})
    metric_names = [m for m, _ in ml_metrics.primary_metric_choices(task_type)]
    primary_metric = primary_metric or default_primary_metric(task_type)
    if primary_metric not in metric_names:
        raise ValidationError(
            {"primary_metric": f"{primary_metric!r} is not a {task_type} metric; choose one of {', '.join(metric_names)}."}
        )
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                name=name,
                description=(description or "").strip(),
                dataset=dataset,
                target=target,
                task_type=task_type,
                primary_metric=primary_metric,
                split_seed=split_seed,
                created_by=user,
            )
            audit_record(actor=user, action="experiment.create", obj=experiment,
                         after={"dataset": dataset.name, "target": target, "task_type": task_type})
    except IntegrityError:
        raise ValidationError({"name": f"An experiment named {name!r} already exists."}) from None
    return experiment


def _trainable_version(experiment: Experiment, chosen: DatasetVersion | None) -> DatasetVersion:
    """The dataset version a run of ``experiment`` trains on, or a ValidationError naming the field."""
    version = chosen or _latest_version(experiment.dataset)
    if version is None:
        raise ValidationError({"dataset_version": "The experiment's dataset has no version yet."})
    if version.dataset_id != experiment.dataset_id:
        raise ValidationError({"dataset_version": f"{version} is not a version of {experiment.dataset.name}."})
    if version.status != "ready":
        raise ValidationError({"dataset_version": f"{version} is still being profiled ({version.status}); wait for it."})
    if not version.usable_for_training:
        raise ValidationError(
            {"dataset_version": f"{version} failed validation; an ML engineer must override it with a reason first."}
        )
    problem = _target_problem(version, experiment.target, experiment.task_type)
    if problem:
        raise ValidationError({"target": problem})
    return version


def _training_spec(experiment: Experiment, version: DatasetVersion, *, algorithm: str, params: dict,
                   grid: dict | None, random_state: int) -> tuple[TrainingSpec, list[dict]]:
    """The run's spec and its grid's candidates, checked against the catalog and the settings' limits."""
    entry = get_algorithm(algorithm)
    if entry.task_type != experiment.task_type:
        raise SpecError(
            f"{entry.name} is a {entry.task_type} algorithm but {experiment.name!r} is {experiment.task_type}.",
            field="algorithm",
        )
    limits = settings.TRAINING_PARAM_LIMITS
    cleaned = clean_params(algorithm, params, limits=limits)
    candidates = (expand_grid(grid, algorithm, limits=limits, max_candidates=settings.TRAINING_MAX_GRID_CANDIDATES)
                  if grid else [])
    spec = TrainingSpec(
        task_type=experiment.task_type,
        target=experiment.target,
        features=features_for(experiment, version),
        algorithm=algorithm,
        params=cleaned,
        cv_folds=experiment.cv_folds,
        holdout_fraction=experiment.holdout_fraction,
        split_seed=experiment.split_seed,
        random_state=random_state,
    )
    return spec, candidates


def run_launch(
    *,
    user,
    experiment: Experiment,
    dataset_version: DatasetVersion | None = None,
    algorithm: str,
    params: dict | None = None,
    grid: dict | None = None,
    random_state: int = 0,
    source: str = RunSource.MANUAL,
    rerun_of: Run | None = None,
) -> Run:
    """Validate everything that can be checked without the data, then queue the job.

    A bad algorithm, hyperparameter, grid, target or dataset version is a
    ValidationError/SpecError naming the field, raised before any row is written.
    """
    roles.require(user, "launch_training")
    version = _trainable_version(experiment, dataset_version)
    spec, candidates = _training_spec(experiment, version, algorithm=algorithm, params=params or {}, grid=grid,
                                      random_state=random_state)
    cleaned = spec.params
    with transaction.atomic():
        Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
        number = (experiment.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run = Run.objects.create(
            experiment=experiment,
            number=number,
            dataset_version=version,
            dataset_sha256=version.sha256,
            algorithm=algorithm,
            params=cleaned,
            param_grid={"candidates": candidates} if candidates else {},
            spec=spec.to_dict(),
            random_state=random_state,
            source=source,
            rerun_of=rerun_of,
            app_version=settings.APP_VERSION,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        run.job = job_create(kind=TRAIN_JOB, created_by=user, target=run, message="Waiting for a worker")
        run.save(update_fields=["job"])
        audit_record(actor=user, action="run.launch", obj=run,
                     after={"algorithm": algorithm, "params": cleaned, "dataset_version": version.pk,
                            "grid": len(candidates)})
    return run


def run_again(*, user, run: Run) -> Run:
    """Launch the same spec on the same data; the metrics must come out identical."""
    return run_launch(
        user=user,
        experiment=run.experiment,
        dataset_version=run.dataset_version,
        algorithm=run.algorithm,
        params=run.params if not run.param_grid else None,
        grid=_grid_from_candidates(run.param_grid.get("candidates")) if run.param_grid else None,
        random_state=run.random_state,
        source=RunSource.RERUN,
        rerun_of=run,
    )


def _grid_from_candidates(candidates: list[dict] | None) -> dict | None:
    if not candidates:
        return None
    names = sorted({k for c in candidates for k in c})
    return {n: sorted({c.get(n) for c in candidates}, key=lambda v: (v is None, str(v))) for n in names}


def run_cancel(*, user, run: Run) -> Job | None:
    roles.require(user, "launch_training")
    if run.job is None:
        return None
    return job_cancel(job=run.job, user=user)


def run_train(*, run: Run, ctx: JobContext) -> dict:
    """The body of the training job: train (each grid candidate as a trial), save the
    artifact of the chosen pipeline, and record metrics, charts and lineage."""
    log: list[dict] = []
    started = time.monotonic()

    def note(percent: float, message: str) -> None:
        log.append({"t": round(time.monotonic() - started, 2), "message": message})
        ctx.progress(percent, message)

    note(1, f"Loading {run.dataset_version} ({run.dataset_sha256[:12]}…)")
    frame = load_version_frame(run.dataset_version)
    base = TrainingSpec.from_dict(run.spec)
    candidates = run.param_grid.get("candidates") or [base.params]
    results = _train_candidates(frame, base, candidates, note=note, should_cancel=ctx.should_cancel)
    best_index = select_best([r for _, r in results], run.experiment.primary_metric) if len(results) > 1 else 0
    params, best = results[best_index]
    note(96, "Saving the model artifact")
    blob = dump_pipeline(best.pipeline)
    digest = sha256_bytes(blob)
    name = default_storage.save(f"artifacts/runs/{run.pk}/model-{digest[:16]}.skops", ContentFile(blob))
    try:
        with transaction.atomic():
            # numbers for the trials are taken under the same lock run_launch uses
            Experiment.objects.select_for_update().filter(pk=run.experiment_id).first()
            if len(results) > 1:
                _record_trials(run, results)
            Run.objects.filter(pk=run.pk).update(
                params=params,
                spec={**run.spec, "params": params},
                metrics=best.metrics,
                cv_scores=best.cv_scores,
                cv_mean=best.cv_mean,
                charts=best.charts,
                importances=best.permutation_importance,
                classes=best.classes,
                signature=best.signature,
                library_versions=best.library_versions,
                n_train=best.n_train,
                n_holdout=best.n_holdout,
                artifact=name,
                artifact_sha256=digest,
                artifact_size=len(blob),
                log=log + [{"t": round(time.monotonic() - started, 2), "message": f"Artifact saved ({len(blob):,} bytes)"}],
                finished_at=timezone.now(),
            )
            audit_record(actor=None, action="run.trained", obj=run,
                         after={"metrics": best.metrics, "artifact_sha256": digest})
            transaction.on_commit(lambda: run_trained.send(sender=Run, run=Run.objects.get(pk=run.pk)))
    except BaseException:
        default_storage.delete(name)
        raise
    primary = run.experiment.primary_metric
    value = best.metrics.get(primary)
    shown = f"{value:.4f}" if isinstance(value, float) else value
    return {"message": f"Trained {run.algorithm}: {primary} {shown}", "metrics": best.metrics}


def _train_candidates(frame, base: TrainingSpec, candidates: list[dict], *, note, should_cancel) -> list[tuple]:
    """Train each candidate's params (a grid's trials, or the one spec), sharing the progress bar."""
    results = []
    try:
        for index, params in enumerate(candidates):
            spec = TrainingSpec.from_dict({**base.to_dict(), "params": params})
            low, high = 5 + 90 * index / len(candidates), 5 + 90 * (index + 1) / len(candidates)
            prefix = f"Trial {index + 1}/{len(candidates)}: " if len(candidates) > 1 else ""
            result = run_training(
                frame,
                spec,
                progress=lambda p, m, lo=low, hi=high, pre=prefix: note(lo + (hi - lo) * p / 100, pre + m),
                should_cancel=should_cancel,
            )
            results.append((params, result))
    except TrainingCancelled:
        raise JobCancelled() from None
    return results


def _record_trials(run: Run, results: list[tuple]) -> None:
    """One child run per grid candidate, with its scores (the parent holds the chosen one's artifact)."""
    for trial_params, result in results:
        Run.objects.create(
            experiment=run.experiment, number=_next_run_number(run), parent=run,
            dataset_version=run.dataset_version, dataset_sha256=run.dataset_sha256,
            algorithm=run.algorithm, params=trial_params, spec={**run.spec, "params": trial_params},
            random_state=run.random_state, source=run.source, metrics=result.metrics,
            cv_scores=result.cv_scores, cv_mean=result.cv_mean, trial_status="succeeded",
            app_version=run.app_version, created_by=run.created_by, finished_at=timezone.now(),
            n_train=result.n_train, n_holdout=result.n_holdout,
        )


def _next_run_number(run: Run) -> int:
    # Trials share the experiment's numbering so every row keeps a unique (experiment, number).
    current = run.experiment.runs.aggregate(n=Max("number"))["n"] or 0
    return current + 1
