"""Deploy, roll back, predict and log, attach feedback, score batches."""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import tempfile
import time
import uuid
from datetime import datetime

import orjson
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.jobs import JobContext, JobFailed
from apps.core.services import audit_record, job_create
from apps.ml.errors import DataFileError
from apps.ml.io import read_table, sniff_format
from apps.ml.serving import InputError
from apps.registry.models import ModelVersion, Stage

from . import runtime
from .models import BatchScore, Deployment, DeploymentStatus, Environment, PredictionError, PredictionLog

logger = logging.getLogger(__name__)

BATCH_JOB = "deployments.batch_score"
BATCH_CHUNK = 1000


def _audit_refused(deployment_id: int | None, version, exc: runtime.ArtifactRefused) -> None:
    audit_record(actor=None, action="deployment.artifact_refused", obj=version, note=exc.message,
                 after={"code": exc.code, "deployment": deployment_id})


def deployment_create(*, user, version: ModelVersion, environment: Environment, note: str = "") -> Deployment:
    """Make ``version`` the active deployment of its model in ``environment``, atomically."""
    capability = "deploy_production" if environment.is_production else "deploy_nonproduction"
    roles.require(user, capability, message=f"Your role cannot deploy to {environment.name}.")
    if not environment.accepts(version.stage):
        raise ValidationError({"model_version": (
            f"{environment.name} accepts only versions in {environment.get_required_stage_display()}; "
            f"{version} is in {version.stage}.")})
    try:
        with transaction.atomic():
            version = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
            current = (Deployment.objects.select_for_update()
                       .filter(model=version.model, environment=environment, status=DeploymentStatus.ACTIVE).first())
            if current is not None and current.model_version_id == version.pk:
                raise Conflict(f"{version} is already active in {environment.name}.")
            if current is not None:
                _retire(current, user)
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


def _retire(deployment: Deployment, user) -> None:
    deployment.status = DeploymentStatus.RETIRED
    deployment.retired_at = timezone.now()
    deployment.retired_by = user if getattr(user, "is_authenticated", False) else None
    deployment.save(update_fields=["status", "retired_at", "retired_by"])


def _warm(deployment: Deployment) -> None:
    version = ModelVersion.objects.select_related("run__dataset_version", "model").get(pk=deployment.model_version_id)
    try:
        runtime.get_loaded(version, on_refused=lambda exc: _audit_refused(deployment.pk, version, exc))
    except runtime.ArtifactRefused:
        logger.warning("deployed version could not be warmed", extra={"deployment": deployment.pk})


def deployment_rollback(*, user, deployment: Deployment, reason: str = "") -> Deployment:
    """Re-activate the version this deployment replaced (audited)."""
    capability = "deploy_production" if deployment.environment.is_production else "deploy_nonproduction"
    roles.require(user, capability, message=f"Your role cannot roll back {deployment.environment.name}.")
    with transaction.atomic():
        current = Deployment.objects.select_for_update().select_related("environment", "model").get(pk=deployment.pk)
        if current.status != DeploymentStatus.ACTIVE:
            raise Conflict(f"Deployment #{current.pk} is not active; only the active deployment can be rolled back.")
        if current.previous_id is None:
            raise Conflict(f"There is nothing to roll back to: {current.model_version} was the first deployment here.")
        target = Deployment.objects.select_related("model_version").get(pk=current.previous_id)
        _retire(current, user)
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


_ACTIVE_SQL = (
    "SELECT d.id, d.model_version_id, v.artifact_sha256, e.max_instances"
    " FROM deployments_deployment d"
    " JOIN registry_registeredmodel m ON m.id = d.model_id"
    " JOIN deployments_environment e ON e.id = d.environment_id"
    " JOIN registry_modelversion v ON v.id = d.model_version_id"
    " WHERE m.name = %s AND e.name = %s AND d.status = 'active'"
)


def active_target(model_name: str, environment_name: str) -> runtime.Target | None:
    """The active deployment of a model in an environment: one indexed query, a few columns.

    Plain SQL because compiling the equivalent ORM query costs more than running it,
    and this runs on every prediction request.
    """
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_SQL, [model_name, environment_name])
        row = cursor.fetchone()
    if row is None:
        return None
    return runtime.Target(row[0], row[1], row[2], environment_name, row[3])


_LOG_COLUMNS = ("deployment", "model_version_id_logged", "request_id", "created_at", "features", "prediction",
                "probability", "latency_ms", "instance_index", "batch_size", "source")


COPY_FROM_ROWS = 20
COPY_PIECE_ROWS = 100


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _log_json(value) -> str:
    """How a log row's JSON columns are written: numpy scalars as numbers, NaN as null."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _copy_json(value) -> str:
    """A JSON value in COPY's text format: orjson never writes raw control characters, so
    only its backslashes need doubling."""
    return _log_json(value).replace("\\", "\\\\")


def _copy_text(rows: list[tuple]) -> bytes:
    """Log rows as COPY text, in ``_LOG_COLUMNS`` order.

    Formatting the lines here is several times faster than psycopg's per-value
    ``write_row`` adaptation, which dominated the cost of logging a 1,000-instance request.
    """
    lines = []
    for deployment, version, request_id, created, features, prediction, probability, latency, index, size, source \
            in rows:
        lines.append(
            f"{int(deployment)}\t{int(version)}\t{request_id}\t{created.isoformat()}\t{_copy_json(features)}\t"
            f"{_copy_json(prediction)}\t{'\\N' if probability is None else repr(float(probability))}\t"
            f"{float(latency)!r}\t{int(index)}\t{int(size)}\t{str(source).translate(_COPY_ESCAPES)}\n"
        )
    return "".join(lines).encode()


def _insert_logs(rows: list[tuple]) -> None:
    """Write a request's instances in one statement: COPY on PostgreSQL for batches, else one
    multi-row INSERT with values prepared by the fields themselves."""
    fields = [PredictionLog._meta.get_field(name) for name in _LOG_COLUMNS]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(PredictionLog._meta.db_table)
    if connection.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
        # psycopg's own errors from COPY become Django's, so a lost connection counts as transient
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for start in range(0, len(rows), COPY_PIECE_ROWS):  # the server parses a piece while we format the next
                    copy.write(_copy_text(rows[start:start + COPY_PIECE_ROWS]))
        return
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    json_columns = {i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"}

    def prep(i, f, value):
        if i in json_columns:  # as COPY writes them: numpy as numbers, NaN as null, None as JSON null
            return f.get_db_prep_value(orjson.loads(_log_json(value)), connection)
        return f.get_db_prep_save(value, connection)

    for start in range(0, len(rows), 1000):
        chunk = rows[start:start + 1000]
        params = [prep(i, f, value) for row in chunk for i, (f, value) in enumerate(zip(fields, row, strict=True))]
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(chunk))}", params)


def target_of(deployment: Deployment) -> runtime.Target:
    return runtime.Target(deployment.pk, deployment.model_version_id, deployment.model_version.artifact_sha256,
                          deployment.environment.name, deployment.environment.max_instances)


class ServingUnavailable(Exception):
    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def _clean_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _refused_by_id(target: runtime.Target, exc: runtime.ArtifactRefused) -> None:
    from apps.registry.models import ModelVersion

    _audit_refused(target.deployment_id, ModelVersion.objects.get(pk=target.version_id), exc)


def predict_and_log(*, target: runtime.Target, instances, source: str = "api", now: datetime | None = None,
                    started: float | None = None) -> dict:
    """Validate, predict and log in bulk. Raises InputError (400) or ServingUnavailable (503)."""
    body, log_rows = predict_rows(target=target, instances=instances, source=source, now=now, started=started)
    _insert_logs(log_rows)
    return body


def predict_rows(*, target: runtime.Target, instances, source: str = "api", now: datetime | None = None,
                 started: float | None = None, record_errors: bool = True) -> tuple[dict, list[tuple]]:
    """Validate and predict; return the answer and the log rows, unwritten, for the caller to write.

    ``record_errors`` counts a refusal among the deployment's request errors; a batch job
    reports its own failure instead.
    """
    started = started if started is not None else time.perf_counter()
    try:
        loaded = runtime.get_loaded(version_id=target.version_id, sha256=target.sha256,
                                    on_refused=lambda exc: _refused_by_id(target, exc))
    except runtime.ArtifactRefused as exc:
        if record_errors:
            PredictionError.objects.create(deployment_id=target.deployment_id, status=503, message=exc.message[:2000])
        raise ServingUnavailable(exc.message, exc.code) from None
    predictor = loaded.predictor
    try:
        predictor.validate(instances, max_instances=target.max_instances)
    except InputError as exc:
        if record_errors:
            PredictionError.objects.create(deployment_id=target.deployment_id, status=400, message=exc.message[:2000])
        raise
    predictions, probabilities = predictor.predict(instances)
    request_ids = [uuid.uuid4() for _ in predictions]
    latency = (time.perf_counter() - started) * 1000
    created = now or timezone.now()
    size = len(predictions)
    log_rows = [
        (target.deployment_id, target.version_id, request_ids[i], created, instances[i],
         _clean_number(predictions[i]), probabilities[i].get(str(predictions[i])) if probabilities else None,
         latency, i, size, source)
        for i in range(size)
    ]
    body = {
        "model": loaded.model_name,
        "version": loaded.version_number,
        "environment": target.environment,
        "deployment": target.deployment_id,
        "predictions": [_clean_number(p) for p in predictions],
        "request_ids": [str(r) for r in request_ids],
    }
    if probabilities is not None:
        body["probabilities"] = probabilities
    return body, log_rows


def feedback_attach(*, user, items: list[dict]) -> dict:
    """Attach ground-truth labels to logged predictions by request id."""
    if not roles.acts_on_models(user):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Ground truth comes from service accounts, ML engineers and analysts.")
    if not isinstance(items, list) or not items:
        raise ValidationError({"items": "Send {\"request_id\", \"label\"} or {\"items\": [...]} with at least one item."})
    if len(items) > 10_000:
        raise ValidationError({"items": f"At most 10000 labels per call, got {len(items)}."})
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


def batch_create(*, user, deployment: Deployment, uploaded) -> BatchScore:
    if deployment.environment.is_production:
        allowed = roles.can(user, "deploy_production")
    else:
        allowed = roles.can(user, "deploy_nonproduction") or roles.can(user, "launch_training")
    if not allowed:
        raise PermissionDenied(f"Your role cannot run batch scoring in {deployment.environment.name}.")
    if not deployment.is_active:
        raise ValidationError({"deployment": "Batch scoring needs an active deployment."})
    if uploaded is None:
        raise ValidationError({"file": "Choose a CSV file to score."})
    path = uploaded.temporary_file_path()
    fmt = sniff_format(path, uploaded.name)
    frame = read_table(path, fmt, filename=uploaded.name)
    needed = [f["name"] for f in deployment.model_version.signature]
    missing = [n for n in needed if n not in frame.columns]
    if missing:
        raise ValidationError({"file": f"The file lacks the model's feature columns: {', '.join(missing)}."})
    sha = getattr(uploaded, "sha256", None) or hashlib.sha256(open(path, "rb").read()).hexdigest()
    stored = None
    try:
        with transaction.atomic():
            with open(path, "rb") as fh:
                stored = default_storage.save(f"batches/{deployment.pk}/{sha[:16]}-input.{fmt}", File(fh))
            batch = BatchScore.objects.create(deployment=deployment, input_file=stored, input_name=uploaded.name[:255],
                                              input_sha256=sha, rows=len(frame), created_by=user)
            batch.job = job_create(kind=BATCH_JOB, created_by=user, target=batch, message="Waiting to score")
            batch.save(update_fields=["job"])
            audit_record(actor=user, action="batch.create", obj=batch, after={"rows": len(frame)})
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return batch


def batch_score(*, batch: BatchScore, ctx: JobContext) -> dict:
    """Score every row, then log them all and publish the output in one transaction.

    Nothing is logged until every row has been scored, so a bad row, a cancellation or a
    worker that dies part-way leaves no predictions behind, and a retry starts clean. A
    retry of a batch whose output was already published (the job's own completion was
    lost) does nothing twice.
    """
    if BatchScore.objects.filter(pk=batch.pk).exclude(output_file="").exists():
        return {"message": "Already scored", "rows": batch.rows}
    deployment = Deployment.objects.select_related("model_version__run__dataset_version", "model_version__model",
                                                   "environment").get(pk=batch.deployment_id)
    with default_storage.open(batch.input_file.name, "rb") as src:
        digest = hashlib.sha256()
        fd, local = tempfile.mkstemp(suffix=".input")
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: src.read(1024 * 1024), b""):
                digest.update(chunk)
                out.write(chunk)
    try:
        if digest.hexdigest() != batch.input_sha256:
            raise JobFailed("The stored input file does not match its sha256; it will not be scored.")
        try:
            frame = read_table(local, sniff_format(local, batch.input_name), filename=batch.input_name)
        except DataFileError as exc:
            raise JobFailed(exc.message) from None
    finally:
        os.unlink(local)
    names = [f["name"] for f in deployment.model_version.signature]
    records = frame[names].astype(object).where(frame[names].notna(), None).to_dict("records")
    fd, out_path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    log_rows: list[tuple] = []
    name = None
    try:
        with open(out_path, "w", newline="") as fh:
            writer = csv.writer(fh)
            header_written = False
            for start in range(0, len(records), BATCH_CHUNK):
                ctx.check_cancelled()
                chunk = records[start:start + BATCH_CHUNK]
                try:
                    body, rows = predict_rows(target=target_of(deployment), instances=chunk, source="batch",
                                              record_errors=False)
                except ServingUnavailable as exc:
                    raise JobFailed(exc.message) from None
                except InputError as exc:
                    first = exc.errors[0] if exc.errors else {}
                    row = (first.get("instance") or 0) + start + 2
                    raise JobFailed(f"Row {row} of the file: {first.get('message', exc.message)} Nothing was "
                                    "logged; correct the file and score it again.") from None
                log_rows.extend(rows)
                probs = body.get("probabilities")
                classes = sorted(probs[0]) if probs else []
                if not header_written:
                    writer.writerow(["row", "request_id", "prediction", *[f"p_{c}" for c in classes]])
                    header_written = True
                for i, prediction in enumerate(body["predictions"]):
                    extra = [probs[i].get(c) for c in classes] if probs else []
                    writer.writerow([start + i + 1, body["request_ids"][i], prediction, *extra])
                ctx.progress(99 * (start + len(chunk)) / max(len(records), 1), f"Scored {start + len(chunk):,} rows")
        ctx.check_cancelled()
        ctx.progress(99, f"Logging {len(log_rows):,} predictions")
        wanted = f"batches/{deployment.pk}/{batch.pk}-scored.csv"
        with transaction.atomic():
            # Under the batch's row lock: an overlapping attempt (a job the reaper requeued while
            # its first worker still ran) waits here, then finds the output published.
            locked = BatchScore.objects.select_for_update().get(pk=batch.pk)
            if locked.output_file:
                raise _AlreadyPublished()
            if default_storage.exists(wanted):  # left by an attempt killed before it published
                default_storage.delete(wanted)
            with open(out_path, "rb") as fh:
                out_sha = hashlib.sha256(fh.read()).hexdigest()
                fh.seek(0)
                name = default_storage.save(wanted, File(fh))
            _insert_logs(log_rows)
            BatchScore.objects.filter(pk=batch.pk).update(output_file=name, output_sha256=out_sha)
    except _AlreadyPublished:
        return {"message": "Already scored", "rows": batch.rows}
    except BaseException:
        if name:
            default_storage.delete(name)
        raise
    finally:
        os.unlink(out_path)
    return {"message": f"Scored {len(records):,} rows", "rows": len(records)}


class _AlreadyPublished(Exception):
    pass


def environments_ensure() -> None:
    """The default environments (admins add more in the admin)."""
    Environment.objects.get_or_create(name="staging", defaults={
        "description": "Pre-production: smoke tests and shadow traffic", "required_stage": Stage.STAGING, "order": 1})
    Environment.objects.get_or_create(name="production", defaults={
        "description": "Live traffic", "required_stage": Stage.PRODUCTION, "is_production": True, "order": 2})
