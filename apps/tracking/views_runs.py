"""Experiments, runs and metric history: each handler reads the message, calls one service, answers."""

from __future__ import annotations

import re

from apps.experiments import mlflow_runs as svc
from apps.experiments import search
from apps.experiments.models import Experiment, Lifecycle, MetricPoint, Run, metric_value_json
from apps.experiments.search import paginate

from .errors import MlflowError
from .protocol import handler_for, invalid
from .serialize import experiment_json, run_json

TAG = {"key": "string", "value": "string"}
VIEW_TYPES = ("ACTIVE_ONLY", "DELETED_ONLY", "ALL")
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MAX_RUNS_PAGE = 1000
MAX_EXPERIMENTS_PAGE = 1000
MAX_HISTORY_PAGE = 25_000


def page_size(requested: int | None, default: int, largest: int) -> int:
    if requested is None:
        return default
    if requested <= 0 or requested > 1_000_000:
        raise invalid(f"Invalid value {requested} for parameter 'max_results': it must be between 1 and 1000000.")
    return min(requested, largest)


def experiment_by_id(experiment_id: str | None) -> Experiment:
    if not experiment_id:
        raise invalid("Missing value for required parameter 'experiment_id'.")
    found = (Experiment.objects.filter(pk=int(experiment_id)).first()
             if re.fullmatch(r"[0-9]{1,18}", experiment_id) else None)
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with ID {experiment_id}")
    return found


def run_by_id(message: dict) -> Run:
    run_id = message.get("run_id") or message.get("run_uuid")
    if not run_id:
        raise invalid("Missing value for required parameter 'run_id'.")
    found = Run.objects.select_related("experiment", "created_by", "job").filter(uuid=run_id[:40]).first()
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found")
    return found


def _tags(items: list[dict] | None) -> dict:
    return {t.get("key"): t.get("value") for t in items or []}


def _lifecycle(view_type: str | None) -> list[str]:
    return {"DELETED_ONLY": [Lifecycle.DELETED], "ALL": [Lifecycle.ACTIVE, Lifecycle.DELETED]}.get(
        view_type or "ACTIVE_ONLY", [Lifecycle.ACTIVE])


# --- experiments ------------------------------------------------------------------------------------------


@handler_for({"experiment_name": "string"})
def get_experiment_by_name(user, message, **_):
    name = (message.get("experiment_name") or "").strip()
    if not name:
        raise invalid("Missing value for required parameter 'experiment_name'.")
    found = Experiment.objects.filter(name__iexact=name).first()
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'")
    return {"experiment": experiment_json(found)}


@handler_for({"name": "string", "artifact_location": "string", "tags": [TAG]})
def create_experiment(user, message, **_):
    if not message.get("name"):
        raise invalid("Missing value for required parameter 'name'.")
    experiment = svc.mlflow_experiment_create(user=user, name=message["name"], tags=_tags(message.get("tags")))
    return {"experiment_id": str(experiment.pk)}


@handler_for({"experiment_id": "string"})
def get_experiment(user, message, **_):
    return {"experiment": experiment_json(experiment_by_id(message.get("experiment_id")))}


@handler_for({"max_results": "int64", "page_token": "string", "filter": "string", "order_by": ["string"],
              "view_type": VIEW_TYPES})
def search_experiments(user, message, **_):
    size = page_size(message.get("max_results"), 1000, MAX_EXPERIMENTS_PAGE)
    experiments = Experiment.objects.filter(lifecycle_stage__in=_lifecycle(message.get("view_type")))
    for clause in search.parse_filter(message.get("filter"), default_entity="attributes"):
        if clause.entity == "attributes" and clause.key == "name" and isinstance(clause.value, str | tuple):
            experiments = experiments.filter(search.string_q("name", clause.op, clause.value))
        elif clause.entity == "tags" and isinstance(clause.value, str | tuple):
            experiments = experiments.annotate(_t=search.json_text("tags", clause.key)).filter(
                search.string_q("_t", clause.op, clause.value))
        else:
            raise invalid(f"Experiments filter on name or tags, not {clause.entity}.{clause.key}.")
    rows, token = paginate(experiments.order_by("-created_at", "-pk"), token=message.get("page_token"), size=size)
    body = {"experiments": [experiment_json(e) for e in rows]}
    if token:
        body["next_page_token"] = token
    return body


@handler_for({"experiment_id": "string", "new_name": "string"})
def update_experiment(user, message, **_):
    experiment = experiment_by_id(message.get("experiment_id"))
    if message.get("new_name"):
        svc.mlflow_experiment_rename(user=user, experiment=experiment, new_name=message["new_name"])
    return {}


@handler_for({"experiment_id": "string", "key": "string", "value": "string"})
def set_experiment_tag(user, message, **_):
    if not message.get("key") or "value" not in message:
        raise invalid("Missing value for required parameter 'key' or 'value'.")
    svc.mlflow_experiment_set_tag(user=user, experiment=experiment_by_id(message.get("experiment_id")),
                                  key=message["key"], value=message["value"])
    return {}


@handler_for({"experiment_id": "string", "key": "string"})
def delete_experiment_tag(user, message, **_):
    svc.mlflow_experiment_set_tag(user=user, experiment=experiment_by_id(message.get("experiment_id")),
                                  key=message.get("key") or "", value=None)
    return {}


def _lifecycle_handler(stage: str):
    @handler_for({"experiment_id": "string"})
    def handle(user, message, **_):
        svc.mlflow_experiment_set_lifecycle(user=user, experiment=experiment_by_id(message.get("experiment_id")),
                                            stage=stage)
        return {}

    return handle


delete_experiment = _lifecycle_handler(Lifecycle.DELETED)
restore_experiment = _lifecycle_handler(Lifecycle.ACTIVE)


# --- runs ----------------------------------------------------------------------------------------------------


@handler_for({"experiment_id": "string", "user_id": "string", "run_name": "string", "start_time": "int64",
              "tags": [TAG]})
def create_run(user, message, **_):
    if message.get("experiment_id") == "0":
        experiment = svc.mlflow_default_experiment(user=user)
    else:
        experiment = experiment_by_id(message.get("experiment_id"))
    run = svc.mlflow_run_create(user=user, experiment=experiment, run_name=message.get("run_name", ""),
                                start_time=message.get("start_time"), tags=_tags(message.get("tags")),
                                client_user=message.get("user_id", ""))
    return {"run": run_json(Run.objects.select_related("experiment", "created_by").get(pk=run.pk))}


@handler_for({"run_id": "string", "run_uuid": "string", "status": RUN_STATUSES, "end_time": "int64",
              "run_name": "string"})
def update_run(user, message, **_):
    run = svc.mlflow_run_update(user=user, run=run_by_id(message), status=message.get("status"),
                                end_time=message.get("end_time"), run_name=message.get("run_name"))
    return {"run_info": run_json(run)["info"]}


@handler_for({"run_id": "string", "run_uuid": "string"})
def get_run(user, message, **_):
    return {"run": run_json(run_by_id(message))}


def _run_lifecycle(stage: str):
    @handler_for({"run_id": "string"})
    def handle(user, message, **_):
        svc.mlflow_run_set_lifecycle(user=user, run=run_by_id(message), stage=stage)
        return {}

    return handle


delete_run = _run_lifecycle(Lifecycle.DELETED)
restore_run = _run_lifecycle(Lifecycle.ACTIVE)

METRIC = {"key": "string", "value": "double", "timestamp": "int64", "step": "int64", "model_id": "string",
          "dataset_name": "string", "dataset_digest": "string", "run_id": "string"}


@handler_for({"run_id": "string", "run_uuid": "string", **{k: v for k, v in METRIC.items() if k != "run_id"}})
def log_metric(user, message, **_):
    for name in ("key", "value", "timestamp"):
        if name not in message:
            raise invalid(f"Missing value for required parameter '{name}'.")
    svc.mlflow_run_log_batch(user=user, run=run_by_id(message), metrics=[message])
    return {}


@handler_for({"run_id": "string", "run_uuid": "string", "key": "string", "value": "string"})
def log_param(user, message, **_):
    if "key" not in message or "value" not in message:
        raise invalid("Missing value for required parameter 'key' or 'value'.")
    svc.mlflow_run_log_batch(user=user, run=run_by_id(message), params=[message])
    return {}


@handler_for({"run_id": "string", "run_uuid": "string", "key": "string", "value": "string"})
def set_tag(user, message, **_):
    if "key" not in message or "value" not in message:
        raise invalid("Missing value for required parameter 'key' or 'value'.")
    svc.mlflow_run_log_batch(user=user, run=run_by_id(message), tags=[message])
    return {}


@handler_for({"run_id": "string", "key": "string"})
def delete_tag(user, message, **_):
    svc.mlflow_run_delete_tag(user=user, run=run_by_id(message), key=message.get("key") or "")
    return {}


@handler_for({"run_id": "string", "metrics": [METRIC], "params": [TAG], "tags": [TAG]})
def log_batch(user, message, **_):
    for metric in message.get("metrics", []):
        if "timestamp" not in metric or "value" not in metric:
            raise invalid("Each metric needs a value and a timestamp.")
    svc.mlflow_run_log_batch(user=user, run=run_by_id(message), metrics=message.get("metrics", []),
                             params=message.get("params", []), tags=message.get("tags", []))
    return {}


DATASET = {"name": "string", "digest": "string", "source_type": "string", "source": "string", "schema": "string",
           "profile": "string"}


@handler_for({"run_id": "string", "datasets": [{"tags": [TAG], "dataset": DATASET}],
              "models": [{"model_id": "string"}]})
def log_inputs(user, message, **_):
    svc.mlflow_run_log_inputs(user=user, run=run_by_id(message), datasets=message.get("datasets", []))
    return {}


@handler_for({"run_id": "string", "models": [{"model_id": "string", "step": "int64"}]})
def log_outputs(user, message, **_):
    svc.mlflow_run_log_outputs(user=user, run=run_by_id(message), models=message.get("models", []))
    return {}


@handler_for({"experiment_ids": ["string"], "filter": "string", "run_view_type": VIEW_TYPES,
              "max_results": "int32", "order_by": ["string"], "page_token": "string"})
def search_runs(user, message, **_):
    ids = message.get("experiment_ids") or []
    if not ids:
        raise invalid("search_runs needs at least one experiment id.")
    experiments = [experiment_by_id(i) for i in ids[:100]]
    size = page_size(message.get("max_results"), 1000, MAX_RUNS_PAGE)
    runs = Run.objects.filter(experiment__in=experiments, parent__isnull=True,
                              lifecycle_stage__in=_lifecycle(message.get("run_view_type")))
    runs = search.filter_runs(runs, search.parse_filter(message.get("filter")))
    runs = search.order_runs(runs, search.parse_order_by(message.get("order_by")))
    runs = runs.select_related("experiment", "created_by", "job").prefetch_related("inputs")
    rows, token = paginate(runs, token=message.get("page_token"), size=size)
    body = {"runs": [run_json(r) for r in rows]}
    if token:
        body["next_page_token"] = token
    return body


@handler_for({"run_id": "string", "run_uuid": "string", "metric_key": "string", "page_token": "string",
              "max_results": "int32"})
def get_metric_history(user, message, **_):
    run = run_by_id(message)
    key = message.get("metric_key")
    if not key:
        raise invalid("Missing value for required parameter 'metric_key'.")
    size = page_size(message.get("max_results"), MAX_HISTORY_PAGE, MAX_HISTORY_PAGE)
    if not run.is_mlflow:
        value = (run.metrics or {}).get(key)
        points = [] if not isinstance(value, int | float) else [
            {"key": key, "value": value, "timestamp": run.start_time, "step": 0}]
        return {"metrics": points}
    history = (MetricPoint.objects.filter(run=run, key=key).order_by("step", "timestamp", "id")
               .values_list("value", "timestamp", "step"))
    rows, token = paginate(history, token=message.get("page_token"), size=size)
    body = {"metrics": [{"key": key, "value": metric_value_json(v), "timestamp": t, "step": s} for v, t, s in rows]}
    if token:
        body["next_page_token"] = token
    return body
