"""Demo: a churn model that a data scientist trained in a notebook and logged with the MLflow client.

Everything goes through the services the ``/mlflow/`` routes call, in the order the client sends it
(experiment, run with its ``mlflow.source.*`` tags, params, metric history, ``log_input`` of two of
our churn versions, a logged model uploaded through the artifact proxy, registration). Then it is
governed like the others: a promotion to staging on the evaluation data its run logged, gates by
the worker, approval by "analyst" (four-eyes: "engineer" logged it), a staging deployment with three
days of traffic (the last one drifting) and a daily drift check.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import numpy as np
import pandas as pd
import sklearn
import skops.io as sio
import yaml
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.models import DatasetVersion
from apps.datasets.services import load_version_frame
from apps.demo.registry import _approve, _request
from apps.demo.wait import wait_for
from apps.deployments.models import Deployment, Environment, PredictionLog, PredictionSource
from apps.deployments.services import deployment_create, feedback_attach, predict_and_log, target_of
from apps.experiments import artifacts as store
from apps.experiments import logged_models
from apps.experiments import mlflow_runs as runs
from apps.experiments.models import Experiment, LoggedModelStatus
from apps.monitoring.models import MonitorPolicy
from apps.monitoring.services import CHECK_JOB, policy_ensure
from apps.registry.external import external_version_register, registered_model_create_external
from apps.registry.models import ModelVersion, RegisteredModel

MODEL_NAME = "churn-notebook-model"
EXPERIMENT_NAME = "churn-notebook"
GIT_COMMIT = "3b9f2c41d7e8a5f60c1b2d3e4f5a6b7c8d9e0f12"
NOTEBOOK = "notebooks/churn_forest.ipynb"
SITE = "http://localhost:8000"  # what the notebook passed as each dataset's source (the make run address)
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORICAL = ["contract", "plan"]
FEATURES = NUMERIC + CATEGORICAL
TARGET = "churned"
TRAFFIC_DAYS = 3
ROWS_PER_HOUR = 8
COLSPEC_TYPES = {"i": "long", "u": "long", "f": "double", "b": "boolean"}


def _colspec(frame: pd.DataFrame, names: list[str]) -> list[dict]:
    return [{"type": COLSPEC_TYPES.get(frame[n].dtype.kind, "string"), "name": n, "required": True} for n in names]


def _pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prep = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                              ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])
    return Pipeline([("prep", prep), ("forest", RandomForestClassifier(n_estimators=60, max_depth=8,
                                                                       min_samples_leaf=5, random_state=0))])


def _churn_versions() -> tuple[DatasetVersion, DatasetVersion] | None:
    versions = list(DatasetVersion.objects.filter(dataset__name="customer-churn", status="ready")
                    .select_related("dataset").order_by("number")[:2])
    return (versions[0], versions[1]) if len(versions) == 2 else None


def _dataset_input(version: DatasetVersion, frame: pd.DataFrame, context: str, name: str) -> dict:
    """What mlflow.log_input(mlflow.data.from_pandas(frame, source=<url>, name=...), context=...) sends."""
    profile = {"num_rows": len(frame), "num_elements": int(frame.size)}
    return {"tags": [{"key": "mlflow.data.context", "value": context}],
            "dataset": {"name": name, "digest": version.sha256[:8], "source_type": "http",
                        "source": json.dumps({"url": f"{SITE}{version.get_absolute_url()}"}),
                        "schema": json.dumps({"mlflow_colspec": _colspec(frame, list(frame.columns))}),
                        "profile": json.dumps(profile)}}


def _log_run(engineer, training: DatasetVersion, evaluation: DatasetVersion, train: pd.DataFrame, pipeline):
    """set_experiment, start_run (the source tags), log_params, cross-validated metrics by step, log_input."""
    from sklearn.model_selection import cross_val_score

    experiment = (Experiment.objects.filter(name=EXPERIMENT_NAME).first()
                  or runs.mlflow_experiment_create(user=engineer, name=EXPERIMENT_NAME))
    start = int(timezone.now().timestamp() * 1000)
    run = runs.mlflow_run_create(user=engineer, experiment=experiment, run_name="forest-5-features", start_time=start,
                                 client_user="engineer", tags={
                                     "mlflow.source.git.commit": GIT_COMMIT, "mlflow.source.name": NOTEBOOK,
                                     "mlflow.source.type": "NOTEBOOK", "mlflow.user": "engineer"})
    forest = pipeline.named_steps["forest"]
    params = {"n_estimators": forest.n_estimators, "max_depth": forest.max_depth,
              "min_samples_leaf": forest.min_samples_leaf, "features": ",".join(FEATURES)}
    folds = cross_val_score(pipeline, train[FEATURES], train[TARGET], cv=3, scoring="f1_macro")
    metrics = [{"key": "cv_f1_macro", "value": float(v), "timestamp": start + step, "step": step}
               for step, v in enumerate(folds)]
    runs.mlflow_run_log_batch(user=engineer, run=run, params=[{"key": k, "value": str(v)} for k, v in params.items()],
                              metrics=metrics)
    runs.mlflow_run_log_inputs(user=engineer, run=run, datasets=[
        _dataset_input(training, train, "training", "churn-2026-01"),
        _dataset_input(evaluation, load_version_frame(evaluation), "evaluation", "churn-2026-02")])
    return experiment, run


def _put(engineer, owner, path: str, data: bytes) -> None:
    store.artifact_put(user=engineer, owner=owner, path=path, read=io.BytesIO(data).read, length=len(data))


def _mlmodel(model_id: str, run_uuid: str, train: pd.DataFrame, blob: bytes) -> dict:
    """The MLmodel file mlflow.sklearn.log_model(..., serialization_format="skops") writes."""
    return {
        "artifact_path": "model", "model_id": model_id, "run_id": run_uuid, "mlflow_version": "3.17.2",
        "model_size_bytes": len(blob), "utc_time_created": timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
        "flavors": {
            "python_function": {"loader_module": "mlflow.sklearn", "model_path": "model.skops", "predict_fn": "predict",
                                "python_version": "3.12"},
            "sklearn": {"pickled_model": "model.skops", "serialization_format": "skops", "code": None,
                        "sklearn_version": sklearn.__version__, "skops_trusted_types": ["sklearn.tree._tree.Tree"]},
        },
        "signature": {"inputs": json.dumps(_colspec(train, FEATURES)),
                      "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "str", "shape": [-1]}}]),
                      "params": None},
    }


def _log_model(engineer, experiment, run, train: pd.DataFrame, pipeline) -> str:
    """mlflow.sklearn.log_model: a logged model, its files through the artifact proxy, finalized, output of the run."""
    logged = logged_models.logged_model_create(user=engineer, experiment=experiment, name="model",
                                               model_type="", source_run=run)
    blob = sio.dumps(pipeline)
    owner = store.owner_of(f"{logged.artifact_root}/MLmodel")
    files = {"MLmodel": yaml.safe_dump(_mlmodel(logged.model_id, run.uuid, train, blob)).encode(),
             "model.skops": blob,
             "requirements.txt": f"mlflow==3.17.2\nscikit-learn=={sklearn.__version__}\nskops\n".encode(),
             "input_example.json": json.dumps({"columns": FEATURES,
                                               "data": train[FEATURES].head(3).values.tolist()}).encode()}
    for name, data in files.items():
        _put(engineer, owner, f"{logged.artifact_root}/{name}", data)
    logged_models.logged_model_finalize(user=engineer, model=logged, status=LoggedModelStatus.READY)
    importances = dict(zip(pipeline[:-1].get_feature_names_out().tolist(),
                           pipeline.named_steps["forest"].feature_importances_.round(4).tolist(), strict=True))
    _put(engineer, store.Owner(run=run), f"{run.artifact_root}/feature_importances.json",
         json.dumps(importances, indent=2).encode())
    runs.mlflow_run_log_outputs(user=engineer, run=run, models=[{"model_id": logged.model_id, "step": 0}])
    runs.mlflow_run_update(user=engineer, run=run, status="FINISHED")
    return logged.model_id


def _logged_version(engineer) -> ModelVersion | None:
    existing = ModelVersion.objects.filter(model__name=MODEL_NAME).order_by("version").first()
    if existing is not None:
        return existing
    churn = _churn_versions()
    if churn is None:
        return None
    training, evaluation = churn
    train = load_version_frame(training)
    pipeline = _pipeline()
    experiment, run = _log_run(engineer, training, evaluation, train, pipeline)
    pipeline.fit(train[FEATURES], train[TARGET])
    model_id = _log_model(engineer, experiment, run, train, pipeline)
    if not RegisteredModel.objects.filter(name=MODEL_NAME).exists():
        registered_model_create_external(user=engineer, name=MODEL_NAME,
                                         description="Random forest from the churn notebook, logged with the MLflow client.")
    return external_version_register(user=engineer, model_name=MODEL_NAME, source=f"models:/{model_id}",
                                     model_id=model_id, run_id=run.uuid)


def _staging_deployment(engineer, analyst, version: ModelVersion) -> Deployment | None:
    staging = Environment.objects.get(name="staging")
    current = Deployment.objects.filter(model=version.model, environment=staging, status="active").first()
    if current is not None:
        return current
    if version.stage == "none":
        promotion = _request(engineer, version, "staging", "Forest from the churn notebook, logged with MLflow; "
                                                           "gated on the February snapshot it logged for evaluation.")
        _approve(analyst, promotion, "Scored on our February data, not the notebook's; fine for staging.")
        version.refresh_from_db()
    if version.stage != "staging":
        return None
    return deployment_create(user=analyst, version=version, environment=staging, note="demo: notebook model")


def _traffic_start():
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=TRAFFIC_DAYS)


def _traffic(analyst, deployment: Deployment) -> int:
    """Three days of hourly staging traffic, half labelled; the last day's customers call support far more."""
    from apps.demo.datasets import churn_frame

    start, rng, sent = _traffic_start(), np.random.default_rng(21), 0
    for hour in range(TRAFFIC_DAYS * 24):
        shift = 1.5 if hour >= (TRAFFIC_DAYS - 1) * 24 else 0.0
        frame = churn_frame(ROWS_PER_HOUR, seed=50_000 + hour, month=400 + hour, shift=shift)
        when = start + timedelta(hours=hour, minutes=int(rng.integers(60)))
        body = predict_and_log(target=target_of(deployment), instances=frame[FEATURES].to_dict("records"),
                               source=PredictionSource.DEMO, now=when)
        labelled = [{"request_id": rid, "label": label} for rid, label, keep in
                    zip(body["request_ids"], frame[TARGET], rng.random(len(frame)) < 0.5, strict=True) if keep]
        if labelled:
            feedback_attach(user=analyst, items=labelled)
        sent += len(frame)
    return sent


def _daily_checks(deployment: Deployment) -> int:
    """The drift-check job over each day of the traffic (the last one finds the drift and tells the owner)."""
    policy = policy_ensure(model=deployment.model, environment=deployment.environment)
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=50, drift_share=0.3, retrain_policy="on_drift")
    start = _traffic_start()
    for day in range(TRAFFIC_DAYS):
        job = job_create(kind=CHECK_JOB, target=policy, message="Demo: daily drift check of the notebook model",
                         params={"window_start": (start + timedelta(days=day)).isoformat(),
                                 "window_end": (start + timedelta(days=day + 1)).isoformat()})
        wait_for(lambda pk=job.pk: Job.objects.get(pk=pk).is_finished, what="a notebook-model drift check",
                 timeout=300)
    return TRAFFIC_DAYS


def seed() -> str:
    User = get_user_model()
    engineer, analyst = User.objects.get(username="engineer"), User.objects.get(username="analyst")
    version = _logged_version(engineer)
    if version is None:
        return "no churn data to log a notebook model on"
    deployment = _staging_deployment(engineer, analyst, version)
    if deployment is None:
        return f"{version} logged; not approved to staging"
    if PredictionLog.objects.filter(deployment_id=deployment.pk).exists():
        return f"{version} already deployed and watched"
    sent = _traffic(analyst, deployment)
    checks = _daily_checks(deployment)
    return f"{version} logged with the MLflow protocol, in staging; {sent} predictions, {checks} drift checks"
