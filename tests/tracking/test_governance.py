"""Governance stays ours: stage aliases resolve to the stage holder and cannot be moved by the client;
our catalog versions load in a notebook through models:/<name>@production."""

from __future__ import annotations

import pytest
import skops.io as sio
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from apps.core.models import Job
from apps.datasets.models import Dataset
from apps.experiments.models import Run
from apps.experiments.services import run_launch
from apps.ml.persist import sha256_bytes
from apps.registry.models import ModelVersion, RegisteredModel, StageTransition
from apps.registry.services import model_version_register, promotion_approve, promotion_request
from tests.factories import evaluated, make_experiment, make_version, mixed_frame
from tests.tracking.conftest import forest_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def _sklearn_only_pipeline(frame):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))])
    prep = ColumnTransformer([("numeric", numeric, ["x1", "x2"]), ("categorical", categorical, ["color"])])
    return Pipeline([("preprocess", prep), ("model", LogisticRegression())]).fit(
        frame[["x1", "x2", "color"]], frame["target"])


def _catalog_version_in_production(engineer, analyst, frame):
    """A catalog run whose artifact is built from scikit-learn components only, walked to production."""
    data = Dataset.objects.create(name="catalog-data", owner=engineer)
    make_version(data, frame, engineer)
    experiment = make_experiment(engineer, data, name="catalog-exp")
    run = run_launch(user=engineer, experiment=experiment, algorithm="logistic_regression")
    pipeline = _sklearn_only_pipeline(frame)
    blob = sio.dumps(pipeline)
    name = default_storage.save(f"artifacts/runs/{run.pk}/model.skops", ContentFile(blob))
    Run.objects.filter(pk=run.pk).update(
        artifact=name, artifact_sha256=sha256_bytes(blob), artifact_size=len(blob),
        metrics={"f1": 0.9, "accuracy": 0.9, "roc_auc": 0.9},
        signature=[{"name": "x1", "role": "numeric", "dtype": "float64"},
                   {"name": "x2", "role": "numeric", "dtype": "float64"},
                   {"name": "color", "role": "categorical", "dtype": "object"}],
    )
    Job.objects.filter(pk=run.job_id).update(status="succeeded", progress=100)
    run.refresh_from_db()
    version = model_version_register(user=engineer, run=run, model_name="catalog-churn")
    RegisteredModel.objects.filter(pk=version.model_id).update(require_staging_first=False)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="production",
                                            reason="tests"))
    promotion_approve(user=analyst, promotion=promotion, comment="ok",
                      override_reason="accepted in tests" if promotion.failed_gates else "")
    return pipeline, version


def test_a_catalog_version_loads_in_a_notebook_by_its_production_alias(mlflow_client, engineer, analyst):
    frame = mixed_frame(300, seed=3)
    pipeline, version = _catalog_version_in_production(engineer, analyst, frame)
    loaded = mlflow_client.pyfunc.load_model("models:/catalog-churn@production")
    X = frame[["x1", "x2", "color"]]
    assert list(loaded.predict(X)) == list(pipeline.predict(X))
    by_version = mlflow_client.pyfunc.load_model(f"models:/catalog-churn/{version.version}")
    assert list(by_version.predict(X)) == list(pipeline.predict(X))


def test_reading_a_stage_alias_resolves_to_the_holder_of_the_stage(mlflow_client, engineer, analyst):
    from mlflow import MlflowClient

    _, version = _catalog_version_in_production(engineer, analyst, mixed_frame(200, seed=4))
    client = MlflowClient()
    assert client.get_model_version_by_alias("catalog-churn", "production").version == str(version.version)
    assert client.get_model_version("catalog-churn", str(version.version)).current_stage == "Production"
    assert dict(client.get_registered_model("catalog-churn").aliases) == {"production": str(version.version)}


def _external_version(mlflow, frame):
    mlflow.set_experiment("governed")
    with mlflow.start_run():
        mlflow.sklearn.log_model(forest_pipeline(frame), name="model", serialization_format="skops",
                                 skops_trusted_types=["sklearn.tree._tree.Tree"],
                                 input_example=frame[["tenure", "charges", "contract"]].head(3),
                                 registered_model_name="governed-model")
    return ModelVersion.objects.get(model__name="governed-model", version=1)


def test_setting_a_stage_alias_from_the_client_is_refused_and_changes_nothing(mlflow_client, churn_frame):
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    version = _external_version(mlflow_client, churn_frame)
    client = MlflowClient()
    for call in (lambda: client.set_registered_model_alias("governed-model", "production", "1"),
                 lambda: client.set_registered_model_alias("governed-model", "Staging", "1"),
                 lambda: client.delete_registered_model_alias("governed-model", "production"),
                 lambda: client.transition_model_version_stage("governed-model", "1", "Production")):
        with pytest.raises(RestException) as caught:
            call()
        assert caught.value.error_code == "PERMISSION_DENIED"
        assert "/models/" in caught.value.message and "promotion" in caught.value.message
    with pytest.raises(RestException) as caught:
        client.set_registered_model_alias("governed-model", "production", "1")
    assert f"/models/versions/{version.pk}/" in caught.value.message
    version.refresh_from_db()
    assert version.stage == "none"
    assert not StageTransition.objects.filter(model_version=version).exists()
    with pytest.raises(RestException) as caught:
        client.get_model_version_by_alias("governed-model", "production")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
