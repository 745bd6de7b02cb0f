"""Writes for MLflow 3 logged models: created by ``log_model`` before its files are uploaded,
then finalized READY (or UPLOAD_FAILED), tagged, given params."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from apps.core.services import audit_record

from .mlflow_runs import (
    MAX_KEYS_PER_RUN,
    MAX_PARAM_VALUE_LENGTH,
    _check_key,
    _check_value,
    _checked_tags,
    _require_logging,
    writable_experiment,
)
from .models import Experiment, Lifecycle, LoggedModel, LoggedModelStatus, Run, now_ms


def _checked_params(params: list[dict]) -> dict[str, str]:
    return {_check_key(p.get("key"), "param"): _check_value(p.get("value"), "param", MAX_PARAM_VALUE_LENGTH)
            for p in params}


def logged_model_create(*, user, experiment: Experiment, name: str, model_type: str = "",
                        source_run: Run | None = None, params: list[dict] = (),
                        tags: list[dict] = ()) -> LoggedModel:
    _require_logging(user)
    writable_experiment(experiment)
    name = (name or "").strip()
    if not name or len(name) > 250:
        raise ValidationError({"name": "A logged model needs a name of 1 to 250 characters."})
    if source_run is not None and source_run.experiment_id != experiment.pk:
        raise ValidationError({"source_run_id": f"Run {source_run.uuid} belongs to another experiment."})
    if len(params) > MAX_KEYS_PER_RUN or len(tags) > MAX_KEYS_PER_RUN:
        raise ValidationError({"params": f"A logged model holds at most {MAX_KEYS_PER_RUN} params and tags."})
    with transaction.atomic():
        model = LoggedModel.objects.create(
            experiment=experiment, name=name, model_type=(model_type or "")[:100], source_run=source_run,
            params=_checked_params(list(params)), tags=_checked_tags({t.get("key"): t.get("value") for t in tags}),
            created_by=user,
        )
        audit_record(actor=user, action="logged_model.create", obj=model,
                     after={"model_id": model.model_id, "run": source_run.uuid if source_run else None})
    return model


def _writable(model: LoggedModel) -> LoggedModel:
    writable_experiment(model.experiment)
    if model.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError({"model_id": f"Logged model {model.model_id} is deleted."})
    return model


def logged_model_finalize(*, user, model: LoggedModel, status: str) -> LoggedModel:
    _require_logging(user)
    _writable(model)
    if status not in (LoggedModelStatus.READY, LoggedModelStatus.FAILED):
        raise ValidationError({"status": "Finalize a logged model as LOGGED_MODEL_READY or "
                                         "LOGGED_MODEL_UPLOAD_FAILED."})
    with transaction.atomic():
        before = model.status
        LoggedModel.objects.filter(pk=model.pk).update(status=status, updated_ms=now_ms())
        model.refresh_from_db()
        audit_record(actor=user, action="logged_model.finalize", obj=model, before={"status": before},
                     after={"status": status})
    return model


def logged_model_set_tags(*, user, model: LoggedModel, tags: list[dict] = (), delete: str | None = None) -> None:
    _require_logging(user)
    _writable(model)
    new = _checked_tags({t.get("key"): t.get("value") for t in tags})
    with transaction.atomic():
        locked = LoggedModel.objects.select_for_update().get(pk=model.pk)
        merged = {**(locked.tags or {}), **new}
        if delete is not None:
            if delete not in merged:
                raise LoggedModel.DoesNotExist(f"No tag with key {delete!r} on logged model {model.model_id}.")
            merged.pop(delete)
        if len(merged) > MAX_KEYS_PER_RUN:
            raise ValidationError({"tags": f"A logged model holds at most {MAX_KEYS_PER_RUN} tags."})
        LoggedModel.objects.filter(pk=model.pk).update(tags=merged, updated_ms=now_ms())


def logged_model_log_params(*, user, model: LoggedModel, params: list[dict]) -> None:
    _require_logging(user)
    _writable(model)
    new = _checked_params(list(params))
    with transaction.atomic():
        locked = LoggedModel.objects.select_for_update().get(pk=model.pk)
        merged = {**(locked.params or {}), **new}
        if len(merged) > MAX_KEYS_PER_RUN:
            raise ValidationError({"params": f"A logged model holds at most {MAX_KEYS_PER_RUN} params."})
        LoggedModel.objects.filter(pk=model.pk).update(params=merged, updated_ms=now_ms())


def logged_model_delete(*, user, model: LoggedModel) -> None:
    _require_logging(user)
    _writable(model)
    if model.artifacts_frozen:
        raise ValidationError({"model_id": f"Logged model {model.model_id} is registered as a model version; "
                                           "it is kept."})
    with transaction.atomic():
        LoggedModel.objects.filter(pk=model.pk).update(lifecycle_stage=Lifecycle.DELETED, updated_ms=now_ms())
        audit_record(actor=user, action="logged_model.delete", obj=model)
