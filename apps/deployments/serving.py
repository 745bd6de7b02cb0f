"""Serving: who is calling, which deployment answers, and predict-and-log.

The predict view makes one query per token request: ``token_target`` finds the live
token of an active user and the active deployment together. Tokens are never cached,
so a revoked token or a user made inactive is refused from the next request on, in
every process. What the token's user may do (``Caller``) is kept per process for
``ROLE_CACHE_SECONDS``, by user id (never on a shared user object): reading it exactly
on every request (groups, permissions) tripled the query's planning time (1.5 ms), so a
change of role reaches the hot path within that delay. Plain SQL because compiling the
equivalent ORM query costs more than running it, and this runs on every request.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from apps.accounts.models import ApiToken, hash_key
from apps.core import roles
from apps.core.services import audit_record
from apps.ml.serving import InputError
from apps.registry.models import ModelVersion

from . import runtime
from .log_writer import LogRow, write_logs
from .models import Deployment, PredictionError, PredictionSource


@dataclass(frozen=True)
class Target:
    """What one request needs to know about the active deployment: a few columns, no JSON."""

    deployment_id: int
    version_id: int
    sha256: str
    environment: str
    max_instances: int


@dataclass(frozen=True)
class Caller:
    """Who sent a request, as far as serving cares."""

    may_predict: bool
    source: str  # PredictionSource: API for service accounts, INTERACTIVE for people


class ServingError(Exception):
    """Why a prediction request was not answered: ``status`` 400 (the instances) or 503 (the model).

    ``problems`` lists the first problems with the instances (see ``InputError``),
    ``total`` counts them all.
    """

    def __init__(self, status: int, code: str, message: str, problems: list[dict] | None = None, total: int = 0):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.problems, self.total = problems or [], total


_ACTIVE_SQL = (
    "SELECT d.id, d.model_version_id, v.artifact_sha256, e.max_instances"
    " FROM deployments_deployment d"
    " JOIN registry_registeredmodel m ON m.id = d.model_id"
    " JOIN deployments_environment e ON e.id = d.environment_id"
    " JOIN registry_modelversion v ON v.id = d.model_version_id"
    " WHERE m.name = %s AND e.name = %s AND d.status = 'active'"
)


def active_target(model_name: str, environment_name: str) -> Target | None:
    """The active deployment of a model in an environment: one indexed query, a few columns."""
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_SQL, [model_name, environment_name])
        row = cursor.fetchone()
    return None if row is None else Target(row[0], row[1], row[2], environment_name, row[3])


ROLE_CACHE_SECONDS = 10.0
_callers: dict[int, tuple[float, Caller]] = {}
_callers_lock = threading.Lock()


@functools.cache
def _token_sql() -> str:
    return (
        "SELECT t.user_id, a.id, a.model_version_id, a.artifact_sha256, a.max_instances"
        f" FROM {ApiToken._meta.db_table} t JOIN {get_user_model()._meta.db_table} u ON u.id = t.user_id"
        f" LEFT JOIN ({_ACTIVE_SQL}) a ON 1 = 1"
        " WHERE t.key_hash = %s AND t.revoked_at IS NULL AND u.is_active"
    )


def token_target(key: str, model_name: str, environment_name: str) -> tuple[Caller | None, Target | None]:
    """The caller a token stands for (None: unknown, revoked or inactive) and the active deployment."""
    with connection.cursor() as cursor:
        cursor.execute(_token_sql(), [model_name, environment_name, hash_key(key)])
        row = cursor.fetchone()
    if row is None:
        return None, None
    caller = _caller_of(row[0])
    if caller is None:
        return None, None
    return caller, None if row[1] is None else Target(row[1], row[2], row[3], environment_name, row[4])


def _caller_of(user_id: int) -> Caller | None:
    now = time.monotonic()
    hit = _callers.get(user_id)
    if hit is not None and now - hit[0] < ROLE_CACHE_SECONDS:
        return hit[1]
    user = get_user_model().objects.filter(pk=user_id).first()  # a fresh user object, not kept
    if user is None:  # deleted since the token was read (its tokens went with it)
        return None
    caller = session_caller(user)
    with _callers_lock:
        if len(_callers) > 10_000:
            _callers.clear()
        _callers[user_id] = (now, caller)
    return caller


def forget_callers() -> None:
    """Drop the per-process role cache (tests; after changing roles in bulk)."""
    with _callers_lock:
        _callers.clear()


def session_caller(user) -> Caller:
    """What ``user`` may do when predicting: a person unless a service account."""
    service = roles.SERVICE in roles.user_roles(user)
    return Caller(roles.can(user, "predict"), PredictionSource.API if service else PredictionSource.INTERACTIVE)


def target_of(deployment: Deployment) -> Target:
    return Target(deployment.pk, deployment.model_version_id, deployment.model_version.artifact_sha256,
                  deployment.environment.name, deployment.environment.max_instances)


def _clean_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def audit_refused(deployment_id: int | None, version, exc: runtime.ArtifactRefused) -> None:
    audit_record(actor=None, action="deployment.artifact_refused", obj=version, note=exc.message,
                 after={"code": exc.code, "deployment": deployment_id})


def _refused_by_id(target: Target, exc: runtime.ArtifactRefused) -> None:
    audit_refused(target.deployment_id, ModelVersion.objects.get(pk=target.version_id), exc)


def predict_and_log(*, target: Target, instances, source: str = PredictionSource.API, now: datetime | None = None,
                    started: float | None = None) -> dict:
    """Validate, predict and log in bulk. Raises ServingError (400 or 503)."""
    body, log_rows = predict_rows(target=target, instances=instances, source=source, now=now, started=started)
    write_logs(log_rows)
    return body


def _predictor(target: Target, record_errors: bool):
    try:
        return runtime.get_loaded(version_id=target.version_id, sha256=target.sha256,
                                  on_refused=lambda exc: _refused_by_id(target, exc))
    except runtime.ArtifactRefused as exc:
        if record_errors:
            PredictionError.objects.create(deployment_id=target.deployment_id, status=503, message=exc.message[:2000])
        raise ServingError(503, exc.code, exc.message) from None


def predict_rows(*, target: Target, instances, source: str = PredictionSource.API, now: datetime | None = None,
                 started: float | None = None, record_errors: bool = True) -> tuple[dict, list[LogRow]]:
    """Validate and predict; return the answer and the log rows, unwritten, for the caller to write.

    ``record_errors`` counts a refusal among the deployment's request errors; a batch job
    reports its own failure instead.
    """
    started = started if started is not None else time.perf_counter()
    loaded = _predictor(target, record_errors)
    try:
        loaded.predictor.validate(instances, max_instances=target.max_instances)
        predictions, probabilities = loaded.predictor.predict(instances)  # a model may refuse what passed
    except InputError as exc:
        if record_errors:
            PredictionError.objects.create(deployment_id=target.deployment_id, status=400, message=exc.message[:2000])
        raise ServingError(400, "invalid_instances", exc.message, exc.errors, exc.total) from None
    request_ids = [uuid.uuid4() for _ in predictions]
    latency = (time.perf_counter() - started) * 1000
    created = now or timezone.now()
    size = len(predictions)
    log_rows = [
        LogRow(target.deployment_id, target.version_id, request_ids[i], created, instances[i],
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

