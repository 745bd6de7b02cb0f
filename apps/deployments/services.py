"""The deployment workflow (deploy, roll back), ground-truth feedback and batch scoring.

Each action's permission is checked here, once, by the rule on ``Environment``
(``allows_deploy_by``, ``allows_batch_scoring_by``). Serving itself (which deployment
answers, predict-and-log) is ``serving``; writing log rows is ``log_writer``.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import math
import os
import re
import tempfile
import uuid
from collections.abc import Iterator

import pandas as pd
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.jobs import JobContext, JobFailed
from apps.core.services import audit_record, job_create
from apps.ml.errors import DataFileError
from apps.ml.io import file_sha256, read_table, sniff_format
from apps.registry.loading import deployability_now, refusal_text
from apps.registry.models import ModelVersion, Stage

from . import runtime
from .log_writer import LogSpool
from .models import BatchScore, Deployment, DeploymentStatus, Environment, PredictionLog, PredictionSource
from .serving import (  # later apps (monitoring, maturity) import predict_and_log and target_of from here
    ServingError,
    audit_refused,
    predict_and_log,  # noqa: F401
    predict_rows,
    target_of,
)

logger = logging.getLogger(__name__)

BATCH_JOB = "deployments.batch_score"
BATCH_CHUNK = 1000


def deployment_create(*, user, version: ModelVersion, environment: Environment, note: str = "") -> Deployment:
    """Make ``version`` the active deployment of its model in ``environment``, atomically."""
    if not environment.allows_deploy_by(user):
        raise PermissionDenied(f"Your role cannot deploy to {environment.name}.")
    if not environment.accepts(version.stage):
        raise ValidationError({"model_version": (
            f"{environment.name} takes versions in stage: {environment.get_required_stage_display()}; "
            f"{version} is in stage {version.stage}: ask for its promotion first.")})
    _refuse_not_deployable(version)
    try:
        with transaction.atomic():
            version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
            current = (Deployment.objects.select_for_update()
                       .filter(model=version.model, environment=environment, status=DeploymentStatus.ACTIVE).first())
            if current is not None and current.model_version_id == version.pk:
                raise Conflict(f"{version} is already active in {environment.name}.")
            if current is not None:
                current.retire(by=user)
            deployment = Deployment.objects.create(environment=environment, model=version.model,
                                                   model_version=version, previous=current, deployed_by=user,
                                                   note=(note or "").strip()[:300])
            audit_record(actor=user, action="deployment.create", obj=deployment,
                         before={"version": current.model_version_id if current else None},
                         after={"version": version.pk, "environment": environment.name})
    except IntegrityError:
        raise Conflict(f"Another deployment to {environment.name} happened at the same moment; retry.") from None
    transaction.on_commit(lambda: _warm(deployment))
    return deployment


def _refuse_not_deployable(version: ModelVersion) -> None:
    """A version trained elsewhere is deployed only while it could be loaded (judged now, not at registration)."""
    reasons = deployability_now(version)
    if reasons:
        raise ValidationError({"model_version": refusal_text(version, reasons)})


def _warm(deployment: Deployment) -> None:
    version = ModelVersion.objects.select_related("run__dataset_version", "model").get(pk=deployment.model_version_id)
    try:
        runtime.get_loaded(version, on_refused=lambda exc: audit_refused(deployment.pk, version, exc))
    except runtime.ArtifactRefused:
        logger.warning("deployed version could not be warmed", extra={"deployment": deployment.pk})


def deployment_rollback(*, user, deployment: Deployment, reason: str = "") -> Deployment:
    """Re-activate the version this deployment replaced (audited)."""
    if not deployment.environment.allows_deploy_by(user):
        raise PermissionDenied(f"Your role cannot roll back {deployment.environment.name}.")
    with transaction.atomic():
        current = Deployment.objects.select_for_update().select_related("environment", "model").get(pk=deployment.pk)
        if current.status != DeploymentStatus.ACTIVE:
            raise Conflict(f"Deployment #{current.pk} is not active; only the active deployment can be rolled back.")
        if current.previous_id is None:
            raise Conflict(f"There is nothing to roll back to: {current.model_version} was the first deployment here.")
        target = Deployment.objects.select_related("model_version").get(pk=current.previous_id)
        _refuse_not_deployable(target.model_version)
        current.retire(by=user)
        restored = Deployment.objects.create(
            environment=current.environment, model=current.model, model_version=target.model_version,
            previous=target.previous, deployed_by=user, is_rollback=True,
            note=f"Rollback from {current.model_version}: {(reason or '').strip()}"[:300],
        )
        audit_record(actor=user, action="deployment.rollback", obj=restored,
                     before={"version": current.model_version_id}, after={"version": target.model_version_id},
                     note=reason)
    transaction.on_commit(lambda: _warm(restored))
    return restored


def _parse_feedback(items: list) -> tuple[dict, dict]:
    """request id -> (position, label) for the well-formed items; field -> message for the others."""
    errors, parsed = {}, {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors[f"items[{i}]"] = "Each item must be an object with request_id and label."
            continue
        raw_id, label = item.get("request_id"), item.get("label")
        try:
            request_id = uuid.UUID(str(raw_id))
        except ValueError:
            errors[f"items[{i}].request_id"] = f"{raw_id!r} is not a request id (a UUID from a predict answer)."
            continue
        if label is None or isinstance(label, (dict, list)):
            errors[f"items[{i}].label"] = "The label must be a string, number or boolean."
            continue
        if isinstance(label, float) and not math.isfinite(label):
            errors[f"items[{i}].label"] = f"The label must be a finite number, got {label!r}."
            continue
        if isinstance(label, str) and "\x00" in label:
            errors[f"items[{i}].label"] = "The label contains a NUL character (\\u0000), which is not allowed."
            continue
        parsed[request_id] = (i, label)
    return parsed, errors


def feedback_attach(*, user, items: list[dict]) -> dict:
    """Attach ground-truth labels to logged predictions by request id."""
    if not roles.acts_on_models(user):
        raise PermissionDenied("Ground truth comes from service accounts, ML engineers and analysts.")
    if not isinstance(items, list) or not items:
        raise ValidationError({"items": "Send {\"request_id\", \"label\"} or {\"items\": [...]} with at least one item."})
    if len(items) > 10_000:
        raise ValidationError({"items": f"At most 10000 labels per call, got {len(items)}."})
    parsed, errors = _parse_feedback(items)
    rows = PredictionLog.objects.filter(request_id__in=list(parsed)).values_list(
        "request_id", "id", "deployment__model__task_type")
    found = {r: pk for r, pk, _ in rows}
    regression = {r for r, _, task in rows if task == "regression"}
    errors.update({f"items[{parsed[r][0]}].request_id": f"No prediction has request id {r}."
                   for r in parsed if r not in found})
    for r in regression:
        label = parsed[r][1]
        if isinstance(label, bool) or not isinstance(label, (int, float)) or not math.isfinite(label):
            errors[f"items[{parsed[r][0]}].label"] = "This prediction came from a regression model: send a number."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        for request_id, (_, label) in parsed.items():
            PredictionLog.objects.filter(pk=found[request_id]).update(label=label, labelled_at=now, labelled_by=user)
        audit_record(actor=user, action="feedback.attach", after={"labels": len(parsed)})
    return {"updated": len(parsed)}


# --- batch scoring ------------------------------------------------------------------------------------------


def batch_create(*, user, deployment: Deployment, uploaded) -> BatchScore:
    """Store an uploaded file and queue the job that scores it (the job reads the file, not this request)."""
    if not deployment.environment.allows_batch_scoring_by(user):
        raise PermissionDenied(f"Your role cannot run batch scoring in {deployment.environment.name}.")
    if not deployment.is_active:
        raise ValidationError({"deployment": "Batch scoring needs an active deployment."})
    if uploaded is None:
        raise ValidationError({"file": "Choose a CSV file to score."})
    path = uploaded.temporary_file_path()
    fmt = sniff_format(path, uploaded.name)  # the kind of bytes only: parsing is the job's
    sha = getattr(uploaded, "sha256", None) or file_sha256(path)
    stored = None
    try:
        with transaction.atomic():
            with open(path, "rb") as fh:
                stored = default_storage.save(f"batches/{deployment.pk}/{sha[:16]}-input.{fmt}", File(fh))
            batch = BatchScore.objects.create(deployment=deployment, input_file=stored, input_name=uploaded.name[:255],
                                              input_sha256=sha, created_by=user)
            batch.job = job_create(kind=BATCH_JOB, created_by=user, target=batch, message="Waiting to score")
            batch.save(update_fields=["job"])
            audit_record(actor=user, action="batch.create", obj=batch, after={"file": batch.input_name})
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return batch


def _read_batch_input(batch: BatchScore, names: list[str]) -> pd.DataFrame:
    """The stored file, verified against its sha256, read and checked: the model's columns, the row cap."""
    digest = hashlib.sha256()
    fd, local = tempfile.mkstemp(suffix=".input")
    try:
        with default_storage.open(batch.input_file.name, "rb") as src, os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != batch.input_sha256:
            raise JobFailed("The stored input file does not match its sha256; it will not be scored.")
        try:
            # the row cap is judged from a Parquet footer or while a CSV streams, before the table is held
            frame = read_table(local, sniff_format(local, batch.input_name), filename=batch.input_name,
                               max_rows=settings.BATCH_MAX_ROWS, max_cells=settings.DATASET_MAX_CELLS,
                               max_columns=settings.DATASET_MAX_COLUMNS)
        except DataFileError as exc:
            if exc.code == "too_many_rows":
                raise JobFailed(f"{exc.message} Batch scoring takes at most {settings.BATCH_MAX_ROWS:,} rows (the "
                                "BATCH_MAX_ROWS setting): split the file and score the parts.") from None
            raise JobFailed(exc.message) from None
    finally:
        os.unlink(local)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise JobFailed(f"The file lacks the model's feature columns: {', '.join(missing)}.")
    return frame[names]


_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value):
    """A value safe to open in a spreadsheet (OWASP, CSV injection): text that starts with = + - @,
    a tab or a carriage return gets a leading apostrophe, so it is shown, never run as a formula.
    A cell that is entirely a number (such as the class label "-1") is a number to a
    spreadsheet, never a formula, and is kept as it is."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _records(frame: pd.DataFrame, start: int) -> list[dict]:
    """Rows ``start`` to ``start + BATCH_CHUNK`` as predict instances (missing values as None)."""
    part = frame.iloc[start:start + BATCH_CHUNK].astype(object)
    return part.where(part.notna(), None).to_dict("records")


def _score_into(deployment: Deployment, frame: pd.DataFrame, ctx: JobContext, spool: LogSpool, fh) -> None:
    """Score every row: the answers to the CSV ``fh``, the log rows to ``spool``."""
    writer = csv.writer(fh)
    target = target_of(deployment)
    classes = None
    for start in range(0, len(frame), BATCH_CHUNK):
        ctx.check_cancelled()
        try:
            body, rows = predict_rows(target=target, instances=_records(frame, start), source=PredictionSource.BATCH,
                                      record_errors=False)
        except ServingError as exc:
            if exc.status != 400:
                raise JobFailed(exc.message) from None
            first = exc.problems[0] if exc.problems else {}
            row = (first.get("instance") or 0) + start + 2
            raise JobFailed(f"Row {row} of the file: {first.get('message', exc.message)} Nothing was "
                            "logged; correct the file and score it again.") from None
        spool.add(rows)
        probs = body.get("probabilities")
        if classes is None:
            classes = sorted(probs[0]) if probs else []
            writer.writerow(["row", "request_id", "prediction", *[csv_cell(f"p_{c}") for c in classes]])
        for i, prediction in enumerate(body["predictions"]):
            extra = [probs[i].get(c) for c in classes] if probs else []
            writer.writerow([start + i + 1, body["request_ids"][i], csv_cell(prediction), *extra])
        done = start + len(rows)
        ctx.progress(99 * done / len(frame), f"Scored {done:,} rows")


def _publish(batch: BatchScore, deployment: Deployment, out_path: str, spool: LogSpool) -> None:
    """Store the scored file and log every prediction, in one transaction under the batch's row lock.

    An overlapping attempt (a job the reaper requeued while its first worker still ran)
    waits for the lock, then finds the output published.
    """
    wanted = f"batches/{deployment.pk}/{batch.pk}-scored.csv"
    name = None
    try:
        with transaction.atomic():
            if BatchScore.objects.select_for_update().get(pk=batch.pk).output_file:
                raise _AlreadyPublished()
            if default_storage.exists(wanted):  # left by an attempt killed before it published
                default_storage.delete(wanted)
            out_sha = file_sha256(out_path)
            with open(out_path, "rb") as fh:
                name = default_storage.save(wanted, File(fh))
            spool.write()
            BatchScore.objects.filter(pk=batch.pk).update(output_file=name, output_sha256=out_sha)
    except BaseException:
        if name:
            default_storage.delete(name)
        raise


@contextlib.contextmanager
def _temporary_csv() -> Iterator[str]:
    fd, path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    try:
        yield path
    finally:
        os.unlink(path)


def batch_score(*, batch: BatchScore, ctx: JobContext) -> dict:
    """Score every row, then log them all and publish the output in one transaction.

    Nothing is logged until every row has been scored, so a bad row, a cancellation or a
    worker that dies part-way leaves no predictions behind, and a retry starts clean. The
    log rows wait in a spool file meanwhile, so memory does not grow with the file. A
    retry of a batch whose output was already published (the job's own completion was
    lost) does nothing twice.
    """
    if BatchScore.objects.filter(pk=batch.pk).exclude(output_file="").exists():
        return {"message": "Already scored", "rows": batch.rows}
    deployment = Deployment.objects.select_related("model_version__run__dataset_version", "model_version__model",
                                                   "environment").get(pk=batch.deployment_id)
    frame = _read_batch_input(batch, [f["name"] for f in deployment.model_version.signature])
    BatchScore.objects.filter(pk=batch.pk).update(rows=len(frame))
    with LogSpool() as spool, _temporary_csv() as out_path:
        with open(out_path, "w", newline="") as fh:
            _score_into(deployment, frame, ctx, spool, fh)
        ctx.check_cancelled()
        ctx.progress(99, f"Logging {spool.rows:,} predictions")
        try:
            _publish(batch, deployment, out_path, spool)
        except _AlreadyPublished:
            return {"message": "Already scored", "rows": len(frame)}
    return {"message": f"Scored {len(frame):,} rows", "rows": len(frame)}


class _AlreadyPublished(Exception):
    pass


def environments_ensure() -> None:
    """The default environments (admins add more in the admin)."""
    Environment.objects.get_or_create(name="staging", defaults={
        "description": "Pre-production: smoke tests and shadow traffic", "required_stage": Stage.STAGING, "order": 1})
    Environment.objects.get_or_create(name="production", defaults={
        "description": "Live traffic", "required_stage": Stage.PRODUCTION, "is_production": True, "order": 2})
