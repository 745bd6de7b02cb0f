"""Our rows as the MLflow protocol's JSON messages: ids and versions as strings, enums by name,
times in epoch milliseconds, tags as lists of {key, value}. Catalog experiments and runs are shown
read-only, in the same shapes."""

from __future__ import annotations

from apps.experiments.models import Experiment, LoggedModel, Run
from apps.registry.catalog_export import catalog_root
from apps.registry.models import ModelVersion, RegisteredModel, Stage

CATALOG_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED", "running": "RUNNING",
                  "queued": "SCHEDULED"}


def ms(moment) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def pairs(mapping: dict) -> list[dict]:
    return [{"key": str(k), "value": v if isinstance(v, str) else str(v)} for k, v in (mapping or {}).items()]


def experiment_json(experiment: Experiment) -> dict:
    tags = dict(experiment.tags or {})
    if not experiment.is_mlflow:
        tags.setdefault("mlops.source", "catalog")
        tags.setdefault("mlflow.note.content", experiment.description)
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "creation_time": ms(experiment.created_at),
        "last_update_time": ms(experiment.created_at),
        "tags": pairs(tags),
    }


def _catalog_tags(run: Run) -> dict:
    return {
        "mlflow.runName": f"#{run.number} {run.algorithm}",
        "mlflow.user": run.created_by.get_username() if run.created_by else "system",
        "mlops.source": "catalog",
        "mlops.algorithm": run.algorithm,
        "mlops.dataset_version": str(run.dataset_version_id or ""),
        "mlops.dataset_sha256": run.dataset_sha256,
    }


def run_info(run: Run) -> dict:
    catalog = not run.is_mlflow
    end = run.end_time if not catalog else ms(run.finished_at)
    info = {
        "run_id": run.uuid,
        "run_uuid": run.uuid,
        "run_name": run.name or f"#{run.number} {run.algorithm}",
        "experiment_id": str(run.experiment_id),
        "user_id": run.client_user or (run.created_by.get_username() if run.created_by else ""),
        "status": run.mlflow_status or CATALOG_STATUS.get(run.status, "SCHEDULED"),
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if end:
        info["end_time"] = end
    return info


def run_metrics(run: Run) -> list[dict]:
    if run.is_mlflow:
        return [{"key": k, "value": p["value"], "timestamp": p["timestamp"], "step": p["step"]}
                for k, p in (run.latest_metrics or {}).items()]
    stamp = ms(run.finished_at) or run.start_time
    return [{"key": k, "value": v, "timestamp": stamp, "step": 0}
            for k, v in (run.metrics or {}).items() if isinstance(v, int | float)]


def dataset_input_json(item) -> dict:
    return {
        "tags": pairs(item.tags),
        "dataset": {"name": item.name, "digest": item.digest, "source_type": item.source_type,
                    "source": item.source, "schema": item.schema, "profile": item.profile},
    }


def run_json(run: Run) -> dict:
    """A run with its data, inputs and outputs (``inputs`` should be prefetched for lists)."""
    tags = run.tags if run.is_mlflow else _catalog_tags(run)
    return {
        "info": run_info(run),
        "data": {"metrics": run_metrics(run), "params": pairs(run.params), "tags": pairs(tags)},
        "inputs": {"dataset_inputs": [dataset_input_json(i) for i in run.inputs.all()]},
        "outputs": {"model_outputs": list(run.model_outputs or [])},
    }


def logged_model_json(model: LoggedModel) -> dict:
    info = {
        "model_id": model.model_id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.created_ms,
        "last_updated_timestamp_ms": model.updated_ms,
        "artifact_uri": model.artifact_uri,
        "status": model.status,
        "model_type": model.model_type,
        "source_run_id": model.source_run.uuid if model.source_run_id else "",
        "status_message": model.status_message,
        "tags": pairs(model.tags),
    }
    metrics = [{k: v for k, v in m.items() if k in ("key", "value", "timestamp", "step", "run_id")}
               for m in model.metrics or []]
    return {"info": info, "data": {"params": pairs(model.params), "metrics": metrics}}


def version_source(version: ModelVersion) -> str:
    if version.is_external:
        return version.source_uri
    return f"mlflow-artifacts:/{catalog_root(version)}"


def download_uri(version: ModelVersion) -> str:
    root = version.storage_root if version.is_external else catalog_root(version)
    return f"mlflow-artifacts:/{root}"


def model_version_json(version: ModelVersion, aliases: list[str] | None = None) -> dict:
    """A version as the client expects it: status always READY; our governance in extra fields it ignores."""
    from django.urls import reverse

    return {
        "name": version.model.name,
        "version": str(version.version),
        "creation_timestamp": ms(version.created_at),
        "last_updated_timestamp": ms(max(version.updated_at, version.stage_changed_at)),
        "user_id": version.created_by.get_username() if version.created_by else "",
        "current_stage": version.mlflow_stage,
        "description": version.description,
        "source": version_source(version),
        "run_id": version.run.uuid,
        "status": "READY",
        "status_message": "",
        "tags": pairs(version.tags if isinstance(version.tags, dict) else {}),
        "aliases": aliases or [],
        "model_id": version.logged_model.model_id if version.logged_model_id else "",
        "mlops": {
            "stage": version.stage,
            "deployable": version.deployable,
            "not_deployable_reasons": version.not_deployable_reasons,
            "page": reverse("registry:version", args=[version.pk]),
        },
    }


def registered_model_json(model: RegisteredModel, versions: list[ModelVersion],
                          aliases: dict[int, list[str]]) -> dict:
    latest: dict[str, ModelVersion] = {}
    for version in versions:
        current = latest.get(version.stage)
        if current is None or version.version > current.version:
            latest[version.stage] = version
    alias_list = sorted(({"alias": a, "version": str(v.version)} for v in versions for a in aliases.get(v.pk, [])),
                        key=lambda a: a["alias"])
    order = [Stage.NONE, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED]
    return {
        "name": model.name,
        "creation_timestamp": ms(model.created_at),
        "last_updated_timestamp": ms(model.updated_at),
        "user_id": model.owner.get_username() if model.owner else "",
        "description": model.description,
        "latest_versions": [model_version_json(latest[s], aliases.get(latest[s].pk)) for s in order if s in latest],
        "tags": pairs(model.tags),
        "aliases": alias_list,
    }
