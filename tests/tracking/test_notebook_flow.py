"""The whole notebook flow of the real MLflow client against our server, with its token only."""

from __future__ import annotations

import hashlib

from apps.datasets.models import Dataset
from apps.experiments.models import Experiment, LoggedModel, MetricPoint, Run, RunInput
from apps.registry.models import ModelVersion, RegisteredModel
from tests.factories import make_version
from tests.tracking.conftest import forest_pipeline

FEATURES = ["tenure", "charges", "contract"]


def _log_forest_run(mlflow, frame, dataset_url, tmp_path):
    pipeline = forest_pipeline(frame)
    X = frame[FEATURES]
    mlflow.set_experiment("churn-notebook")
    with mlflow.start_run(run_name="rf-baseline") as run:
        mlflow.log_param("n_estimators", 20)
        mlflow.log_params({"max_depth": 5, "features": ",".join(FEATURES)})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"accuracy": float((pipeline.predict(X) == frame["churned"]).mean()), "f1": 0.8})
        mlflow.set_tag("team", "churn")
        dataset = mlflow.data.from_pandas(frame, source=dataset_url, name="churn-train", targets="churned")
        mlflow.log_input(dataset, context="training")
        notes = tmp_path / "notes.txt"
        notes.write_text("trained in a notebook\n")
        mlflow.log_artifact(str(notes))
        info = mlflow.sklearn.log_model(
            pipeline, name="model", serialization_format="skops", skops_trusted_types=["sklearn.tree._tree.Tree"],
            input_example=X.head(5), registered_model_name="churn-notebook-model",
        )
    return pipeline, run.info.run_id, info


def test_the_notebook_flow_works_unchanged_against_our_server(mlflow_client, engineer, churn_frame, live_server,
                                                             tmp_path):
    mlflow = mlflow_client
    from mlflow import MlflowClient

    data = Dataset.objects.create(name="churn-data", owner=engineer)
    our_version = make_version(data, churn_frame, engineer)
    url = f"{live_server.url}/datasets/versions/{our_version.pk}/"
    pipeline, run_id, info = _log_forest_run(mlflow, churn_frame, url, tmp_path)
    client = MlflowClient()

    # the run is ours, with its source and everything it logged
    run = Run.objects.get(uuid=run_id)
    assert run.experiment.source == "mlflow" and run.source == "mlflow" and run.status == "succeeded"
    assert run.params == {"n_estimators": "20", "max_depth": "5", "features": "tenure,charges,contract"}
    assert run.tags["team"] == "churn" and run.source_name
    assert MetricPoint.objects.filter(run=run, key="loss").count() == 5
    logged_input = RunInput.objects.get(run=run)
    assert logged_input.context == "training" and logged_input.dataset_version == our_version
    assert {c["name"] for c in logged_input.schema_columns()} >= set(FEATURES)

    found = mlflow.search_runs(experiment_names=["churn-notebook"], filter_string="tags.mlflow.runName = 'rf-baseline'")
    assert list(found["run_id"]) == [run_id]
    assert found["params.n_estimators"][0] == "20"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, 1.0 / (s + 1)) for s in range(5)]

    # the registered version: stage None, deployable, with the sha256 we computed of the skops file
    versions = mlflow.search_model_versions(filter_string="name='churn-notebook-model'")
    assert [(v.version, v.status, v.current_stage) for v in versions] == [("1", "READY", "None")]
    version = ModelVersion.objects.get(model__name="churn-notebook-model", version=1)
    assert version.is_external and version.stage == "none" and version.run == run
    assert version.deployable, version.not_deployable_reasons
    assert version.serialization_format == "skops" and version.loader_module == "mlflow.sklearn"
    assert {f["name"]: f["role"] for f in version.signature} == {
        "tenure": "numeric", "charges": "numeric", "contract": "categorical"}
    assert "sklearn.tree._tree.Tree" in version.untrusted_types
    downloaded = mlflow.artifacts.download_artifacts(f"models:/{info.model_id}", dst_path=str(tmp_path / "m"))
    with open(f"{downloaded}/model.skops", "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == version.artifact_sha256

    registered = client.get_registered_model("churn-notebook-model")
    assert registered.name == "churn-notebook-model"
    client.set_registered_model_alias("churn-notebook-model", "champion", "1")
    assert client.get_model_version_by_alias("churn-notebook-model", "champion").version == "1"
    loaded = mlflow.pyfunc.load_model("models:/churn-notebook-model@champion")
    X = churn_frame[FEATURES]
    assert list(loaded.predict(X)) == list(pipeline.predict(X))

    again = mlflow.register_model(f"runs:/{run_id}/model", "churn-notebook-model")
    assert again.version == "2"
    assert ModelVersion.objects.get(model__name="churn-notebook-model", version=2).logged_model.model_id == info.model_id


def test_an_autologged_cloudpickle_model_is_stored_but_never_deployable(mlflow_client, churn_frame):
    mlflow = mlflow_client
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("churn-autolog")
    mlflow.autolog()
    X = churn_frame[["tenure", "charges"]]
    with mlflow.start_run() as run:
        LogisticRegression(max_iter=200).fit(X, churn_frame["churned"])
    mlflow.autolog(disable=True)
    model = LoggedModel.objects.get(source_run__uuid=run.info.run_id)
    assert model.status == "LOGGED_MODEL_READY"
    assert model.artifact_files.filter(path__endswith="/model.pkl").exists()

    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn-autolog-model")
    stored = ModelVersion.objects.get(model__name="churn-autolog-model", version=int(version.version))
    assert version.status == "READY"
    assert not stored.deployable and stored.uses_pickle
    assert any("cloudpickle" in reason and "skops" in reason for reason in stored.not_deployable_reasons)
    assert RegisteredModel.objects.get(name="churn-autolog-model").versions.count() == 1
    assert Experiment.objects.get(name="churn-autolog").runs.count() == 1
