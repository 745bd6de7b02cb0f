"""Writes for work logged by the MLflow client: experiments, runs, their metrics, params, tags,
dataset inputs and model outputs. The tracking app translates the protocol into these calls.

Catalog experiments and runs are read-only here: they are trained by our own jobs.
"""

from __future__ import annotations

import json
import math
import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Lower

from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.services import audit_record
from apps.datasets.models import DatasetVersion

from .models import (
    Experiment,
    ExperimentSource,
    Lifecycle,
    MetricPoint,
    MlflowRunStatus,
    Run,
    RunInput,
    RunSource,
    now_ms,
)

MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_KEYS_PER_RUN = 5000
MAX_INPUTS_PER_CALL = 100
MAX_INPUT_TEXT = 1024 * 1024
KEY_PATTERN = re.compile(r"[\w\-. /:]+")
# Our pages and API name a dataset version in its URL; a logged source naming one links to it.
DATASET_VERSION_URL = re.compile(r"/(?:datasets/versions|api/v1/dataset-versions)/(\d+)(?:/|$)")
MIN_DIGEST_PREFIX = 12


class AlreadyExists(Conflict):
    default_code = "already_exists"


def _require_logging(user) -> None:
    roles.require(user, "launch_training", message="Your role does not allow logging runs (ML engineers do).")


def _check_key(key, what: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationError({what: f"A {what} key must be a non-empty string."})
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError({what: f"The {what} key {key[:40]!r}… is longer than {MAX_KEY_LENGTH} characters."})
    if not KEY_PATTERN.fullmatch(key) or ".." in key.split("/") or key.startswith("/"):
        raise ValidationError({what: f"Invalid {what} key {key[:80]!r}: use letters, digits and _ - . space : /."})
    return key


def _check_value(value, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValidationError({what: f"A {what} value must be a string."})
    if len(value) > limit:
        raise ValidationError({what: f"The {what} value is longer than {limit} characters."})
    if "\x00" in value:
        raise ValidationError({what: f"A {what} value cannot contain NUL characters."})
    return value


def writable_experiment(experiment: Experiment) -> Experiment:
    if not experiment.is_mlflow:
        raise ValidationError({"experiment_id": f"{experiment.name!r} is trained here from the catalog; the MLflow "
                                                "client can read it but logs into experiments of its own."})
    if experiment.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError({"experiment_id": f"The experiment {experiment.name!r} is deleted; restore it first."})
    return experiment


def writable_run(run: Run) -> Run:
    if not run.is_mlflow:
        raise ValidationError({"run_id": f"{run} was trained here from the catalog; it is read-only to the client."})
    if run.lifecycle_stage != Lifecycle.ACTIVE:
        raise ValidationError({"run_id": f"The run {run.uuid} is deleted; restore it first."})
    return run


# --- experiments -------------------------------------------------------------------------------------------


def mlflow_experiment_create(*, user, name: str, tags: dict[str, str] | None = None) -> Experiment:
    _require_logging(user)
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "An experiment needs a name."})
    if len(name) > 120:
        raise ValidationError({"name": "An experiment name has at most 120 characters."})
    tags = _checked_tags(tags or {})
    if Experiment.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).exists():
        raise AlreadyExists(f"Experiment(name={name}) already exists.")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(name=name, source=ExperimentSource.MLFLOW, tags=tags,
                                                   created_by=user)
            audit_record(actor=user, action="experiment.mlflow_create", obj=experiment, after={"name": name})
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={name}) already exists.") from None
    return experiment


DEFAULT_EXPERIMENT_ID = 0


def mlflow_default_experiment(*, user) -> Experiment:
    """MLflow's "Default" experiment (id 0), where ``mlflow.start_run()`` logs when none was set."""
    found = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
    if found is not None:
        return found
    _require_logging(user)
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(pk=DEFAULT_EXPERIMENT_ID, name="Default",
                                                   source=ExperimentSource.MLFLOW, created_by=user)
            audit_record(actor=user, action="experiment.mlflow_create", obj=experiment, after={"name": "Default"})
    except IntegrityError:
        found = Experiment.objects.filter(pk=DEFAULT_EXPERIMENT_ID).first()
        if found is None:
            raise ValidationError({"experiment_id": "An experiment named 'Default' already exists; call "
                                                    "mlflow.set_experiment() with a name of your own."}) from None
        return found
    return experiment


def mlflow_experiment_rename(*, user, experiment: Experiment, new_name: str) -> Experiment:
    _require_logging(user)
    writable_experiment(experiment)
    new_name = (new_name or "").strip()
    if not new_name or len(new_name) > 120:
        raise ValidationError({"new_name": "A new name of 1 to 120 characters is needed."})
    try:
        with transaction.atomic():
            before = experiment.name
            experiment.name = new_name
            experiment.save(update_fields=["name"])
            audit_record(actor=user, action="experiment.rename", obj=experiment, before={"name": before},
                         after={"name": new_name})
    except IntegrityError:
        raise AlreadyExists(f"Experiment(name={new_name}) already exists.") from None
    return experiment


def mlflow_experiment_set_tag(*, user, experiment: Experiment, key: str, value: str | None) -> None:
    """Set a tag, or delete it when ``value`` is None."""
    _require_logging(user)
    writable_experiment(experiment)
    with transaction.atomic():
        locked = Experiment.objects.select_for_update().get(pk=experiment.pk)
        tags = dict(locked.tags or {})
        if value is None:
            tags.pop(_check_key(key, "tag"), None)
        else:
            tags.update(_checked_tags({key: value}))
        Experiment.objects.filter(pk=experiment.pk).update(tags=tags)


def mlflow_experiment_set_lifecycle(*, user, experiment: Experiment, stage: str) -> None:
    _require_logging(user)
    if not experiment.is_mlflow:
        raise ValidationError({"experiment_id": f"{experiment.name!r} is trained here; delete it from our pages."})
    with transaction.atomic():
        Experiment.objects.filter(pk=experiment.pk).update(lifecycle_stage=stage)
        audit_record(actor=user, action=f"experiment.{'delete' if stage == Lifecycle.DELETED else 'restore'}",
                     obj=experiment, after={"lifecycle_stage": stage})


# --- runs ----------------------------------------------------------------------------------------------------


def mlflow_run_create(*, user, experiment: Experiment, run_name: str = "", start_time: int | None = None,
                      tags: dict[str, str] | None = None, client_user: str = "") -> Run:
    _require_logging(user)
    writable_experiment(experiment)
    tags = _checked_tags(tags or {})
    run_name = (run_name or tags.get("mlflow.runName") or "").strip()[:250]
    with transaction.atomic():
        Experiment.objects.select_for_update().filter(pk=experiment.pk).first()
        number = (experiment.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        run_name = run_name or f"run-{number}"
        run = Run.objects.create(
            experiment=experiment, number=number, source=RunSource.MLFLOW, name=run_name,
            mlflow_status=MlflowRunStatus.RUNNING, start_time=start_time or now_ms(),
            client_user=(client_user or "")[:250], tags={**tags, "mlflow.runName": run_name},
            created_by=user,
        )
        audit_record(actor=user, action="run.mlflow_create", obj=run,
                     after={"run_id": run.uuid, "name": run_name, "source": run.source_name})
    return run


def mlflow_run_update(*, user, run: Run, status: str | None = None, end_time: int | None = None,
                      run_name: str | None = None) -> Run:
    _require_logging(user)
    writable_run(run)
    if status is not None and status not in MlflowRunStatus.values:
        raise ValidationError({"status": f"status must be one of {', '.join(MlflowRunStatus.values)}."})
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        before = {"status": run.mlflow_status, "name": run.name}
        fields = []
        if status is not None:
            run.mlflow_status = status
            fields.append("mlflow_status")
            if status in (MlflowRunStatus.FINISHED, MlflowRunStatus.FAILED, MlflowRunStatus.KILLED):
                run.end_time = end_time or now_ms()
                fields.append("end_time")
        elif end_time is not None:
            run.end_time = end_time
            fields.append("end_time")
        if run_name:
            run.name = run_name.strip()[:250]
            run.tags = {**run.tags, "mlflow.runName": run.name}
            fields += ["name", "tags"]
        if fields:
            run.save(update_fields=sorted(set(fields)))
            audit_record(actor=user, action="run.mlflow_update", obj=run, before=before,
                         after={"status": run.mlflow_status, "name": run.name})
    return run


def mlflow_run_set_lifecycle(*, user, run: Run, stage: str) -> None:
    _require_logging(user)
    if not run.is_mlflow:
        raise ValidationError({"run_id": f"{run} was trained here; it is read-only to the client."})
    if stage == Lifecycle.DELETED and run.model_versions.exists():
        raise ValidationError({"run_id": f"Run {run.uuid} is registered as a model version; it is kept."})
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(lifecycle_stage=stage)
        audit_record(actor=user, action=f"run.{'delete' if stage == Lifecycle.DELETED else 'restore'}", obj=run,
                     after={"lifecycle_stage": stage})


def _checked_tags(tags: dict) -> dict[str, str]:
    return {_check_key(k, "tag"): _check_value(v, "tag", MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}


def _checked_metric(item: dict) -> dict:
    key = _check_key(item.get("key"), "metric")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError({"metric": f"The value of metric {key!r} must be a number."})
    timestamp, step = item.get("timestamp"), item.get("step", 0) or 0
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise ValidationError({"metric": f"The timestamp of metric {key!r} must be an integer (epoch ms)."})
    if isinstance(step, bool) or not isinstance(step, int):
        raise ValidationError({"metric": f"The step of metric {key!r} must be an integer."})
    for name, number in (("timestamp", timestamp), ("step", step)):
        if not -(2**63) <= number < 2**63:
            raise ValidationError({"metric": f"The {name} of metric {key!r} is out of the int64 range."})
    return {"key": key, "value": float(value), "timestamp": timestamp, "step": step,
            "model_id": item.get("model_id") or ""}


def _check_batch(metrics: list, params: list, tags: list) -> None:
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise ValidationError({"metrics": f"At most {MAX_METRICS_PER_BATCH} metrics per batch."})
    if len(params) > MAX_PARAMS_TAGS_PER_BATCH or len(tags) > MAX_PARAMS_TAGS_PER_BATCH:
        raise ValidationError({"params": f"At most {MAX_PARAMS_TAGS_PER_BATCH} params and "
                                         f"{MAX_PARAMS_TAGS_PER_BATCH} tags per batch."})


def _merge_params(current: dict, params: list[dict], run: Run) -> dict:
    merged = dict(current)
    for item in params:
        key = _check_key(item.get("key"), "param")
        value = _check_value(item.get("value"), "param", MAX_PARAM_VALUE_LENGTH)
        if key in merged and str(merged[key]) != value:
            raise ValidationError({"param": (
                f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                f"value='{merged[key]}' for run ID='{run.uuid}'. Attempted logging new value '{value}'.")})
        merged[key] = value
    return merged


def _newer(point: dict, current: dict | None) -> bool:
    if current is None:
        return True
    mine = (point["step"], point["timestamp"], _sortable(point["value"]))
    theirs = (current["step"], current["timestamp"], _sortable(current["value"]))
    return mine >= theirs


def _sortable(value) -> float:
    number = float(value) if not isinstance(value, str) else float(value.replace("Infinity", "inf"))
    return -math.inf if math.isnan(number) else number


def mlflow_run_log_batch(*, user, run: Run, metrics: list[dict] = (), params: list[dict] = (),
                         tags: list[dict] = ()) -> None:
    """Log metrics, params and tags at once: all of them are stored, or none (a bad item names itself)."""
    from .models import metric_value_json

    _require_logging(user)
    writable_run(run)
    metrics, params, tags = list(metrics), list(params), list(tags)
    _check_batch(metrics, params, tags)
    points = [_checked_metric(m) for m in metrics]
    new_tags = _checked_tags({t.get("key"): t.get("value") for t in tags}) if tags else {}
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        merged_params = _merge_params(locked.params or {}, params, locked)
        latest = dict(locked.latest_metrics or {})
        for point in points:
            shown = metric_value_json(point["value"])
            if _newer({**point, "value": shown}, latest.get(point["key"])):
                latest[point["key"]] = {"value": shown, "timestamp": point["timestamp"], "step": point["step"]}
        merged_tags = {**(locked.tags or {}), **new_tags}
        for name, size in (("params", len(merged_params)), ("metrics", len(latest)), ("tags", len(merged_tags))):
            if size > MAX_KEYS_PER_RUN:
                raise ValidationError({name: f"A run holds at most {MAX_KEYS_PER_RUN} distinct {name}."})
        if points:
            MetricPoint.objects.bulk_create(
                [MetricPoint(run_id=run.pk, key=p["key"], value=p["value"], timestamp=p["timestamp"], step=p["step"])
                 for p in points],
                ignore_conflicts=True,
            )
        finite = {k: (v["value"] if not isinstance(v["value"], str) else None) for k, v in latest.items()}
        update = {"params": merged_params, "latest_metrics": latest, "metrics": finite, "tags": merged_tags}
        if "mlflow.runName" in new_tags:
            update["name"] = new_tags["mlflow.runName"][:250]
        Run.objects.filter(pk=run.pk).update(**update)
        _record_model_metrics(run, [p for p in points if p["model_id"]])


def _record_model_metrics(run: Run, points: list[dict]) -> None:
    from .models import LoggedModel, metric_value_json

    by_model: dict[str, list[dict]] = {}
    for p in points:
        by_model.setdefault(p["model_id"], []).append(p)
    for model in LoggedModel.objects.select_for_update().filter(model_id__in=list(by_model), experiment=run.experiment_id):
        latest = {m["key"]: m for m in model.metrics or []}
        for p in by_model[model.model_id]:
            point = {"key": p["key"], "value": metric_value_json(p["value"]), "timestamp": p["timestamp"],
                     "step": p["step"], "run_id": run.uuid}
            if _newer(point, latest.get(p["key"])):
                latest[p["key"]] = point
        LoggedModel.objects.filter(pk=model.pk).update(metrics=list(latest.values())[:MAX_KEYS_PER_RUN])


def mlflow_run_delete_tag(*, user, run: Run, key: str) -> None:
    _require_logging(user)
    writable_run(run)
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        if key not in (locked.tags or {}):
            raise ValidationError({"key": f"No tag with name: {key} in run with id {run.uuid}"})
        tags = {k: v for k, v in locked.tags.items() if k != key}
        Run.objects.filter(pk=run.pk).update(tags=tags)


# --- inputs and outputs -------------------------------------------------------------------------------------


def dataset_version_for(*, source: str, digest: str) -> tuple[DatasetVersion | None, str]:
    """The dataset version a logged input names: by a URL of ours in its source, else by its sha256 as digest."""
    try:
        parsed = json.loads(source) if source else {}
    except ValueError:
        parsed = source
    texts = [v for v in (parsed.values() if isinstance(parsed, dict) else [parsed]) if isinstance(v, str)]
    for text in texts:
        match = DATASET_VERSION_URL.search(text)
        if match:
            version = DatasetVersion.objects.select_related("dataset").filter(pk=int(match.group(1))).first()
            if version is not None:
                return version, f"its source names {version}"
    digest = (digest or "").lower()
    if len(digest) >= MIN_DIGEST_PREFIX and re.fullmatch(r"[0-9a-f]+", digest):
        candidates = list(DatasetVersion.objects.select_related("dataset").filter(sha256__startswith=digest)[:2])
        if len(candidates) == 1:
            return candidates[0], f"its digest is the sha256 of {candidates[0]}"
    return None, ""


def _checked_input(item: dict) -> dict:
    dataset = item.get("dataset")
    if not isinstance(dataset, dict):
        raise ValidationError({"datasets": "Each dataset input needs a 'dataset' object."})
    name, digest = dataset.get("name"), dataset.get("digest")
    if not isinstance(name, str) or not name or len(name) > 500:
        raise ValidationError({"datasets": "A dataset needs a name of 1 to 500 characters."})
    if not isinstance(digest, str) or not digest or len(digest) > 64:
        raise ValidationError({"datasets": f"Dataset {name!r} needs a digest of 1 to 64 characters."})
    texts = {}
    for key in ("source_type", "source", "schema", "profile"):
        value = dataset.get(key) or ""
        if not isinstance(value, str) or len(value) > MAX_INPUT_TEXT or "\x00" in value:
            raise ValidationError({"datasets": f"Dataset {name!r}: {key} must be a string under 1 MiB."})
        texts[key] = value
    if len(texts["source_type"]) > 64:
        raise ValidationError({"datasets": f"Dataset {name!r}: source_type is longer than 64 characters."})
    tags = {t.get("key"): t.get("value") for t in item.get("tags") or [] if isinstance(t, dict)}
    tags = _checked_tags(tags)
    return {"name": name, "digest": digest, **texts, "tags": tags, "context": tags.get("mlflow.data.context", "")[:250]}


def mlflow_run_log_inputs(*, user, run: Run, datasets: list[dict]) -> None:
    _require_logging(user)
    writable_run(run)
    if len(datasets) > MAX_INPUTS_PER_CALL:
        raise ValidationError({"datasets": f"At most {MAX_INPUTS_PER_CALL} dataset inputs per call."})
    items = [_checked_input(d) for d in datasets]
    with transaction.atomic():
        Run.objects.select_for_update().filter(pk=run.pk).first()
        for item in items:
            version, reason = dataset_version_for(source=item["source"], digest=item["digest"])
            RunInput.objects.update_or_create(
                run=run, name=item["name"], digest=item["digest"], context=item["context"],
                defaults={"source_type": item["source_type"], "source": item["source"], "schema": item["schema"],
                          "profile": item["profile"], "tags": item["tags"], "dataset_version": version,
                          "link_reason": reason},
            )


def mlflow_run_log_outputs(*, user, run: Run, models: list[dict]) -> None:
    from .models import LoggedModel

    _require_logging(user)
    writable_run(run)
    wanted = []
    for item in models:
        model_id, step = item.get("model_id"), item.get("step", 0) or 0
        if not isinstance(model_id, str) or isinstance(step, bool) or not isinstance(step, int):
            raise ValidationError({"models": "Each output needs a model_id string and an integer step."})
        wanted.append({"model_id": model_id, "step": step})
    known = set(LoggedModel.objects.filter(model_id__in=[w["model_id"] for w in wanted]).values_list("model_id", flat=True))
    missing = [w["model_id"] for w in wanted if w["model_id"] not in known]
    if missing:
        raise LoggedModel.DoesNotExist(f"Logged model with ID '{missing[0]}' not found.")
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        outputs = list(locked.model_outputs or [])
        outputs += [w for w in wanted if w not in outputs]
        Run.objects.filter(pk=run.pk).update(model_outputs=outputs[:MAX_KEYS_PER_RUN])
