"""A model logged with the real MLflow client, then governed, served and watched through our API and pages:
promotion on an evaluation dataset version, the gates, four-eyes, deploy, predict, the log, a drift check,
and loading it back by models:/<name>@production."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from django.contrib.auth.models import Group

from apps.core.roles import ANALYST
from apps.datasets.models import Dataset
from apps.deployments.models import Deployment, PredictionLog
from apps.deployments.services import environments_ensure
from apps.monitoring.models import MonitorPolicy
from apps.monitoring.services import drift_check
from apps.registry.models import ModelVersion, StageTransition
from tests.factories import evaluated, make_version
from tests.tracking.conftest import forest_pipeline

FEATURES = ["tenure", "charges", "contract"]
COMMIT = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"


def churn(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, rows)
    contract = rng.choice(["monthly", "yearly", "two-year"], rows)
    churned = ((tenure < 20) & (contract == "monthly")) | (rng.random(rows) < 0.1)
    return pd.DataFrame({"tenure": tenure, "charges": rng.normal(70, 20, rows).round(2), "contract": contract,
                         "churned": np.where(churned, "yes", "no")})


def log_external_model(mlflow, frame, training_url: str, name: str):
    """What a notebook does: a skops pipeline, its training data and its commit."""
    pipeline = forest_pipeline(frame)
    mlflow.set_experiment(f"{name}-notebook")
    with mlflow.start_run():
        mlflow.set_tag("mlflow.source.git.commit", COMMIT)
        mlflow.log_input(mlflow.data.from_pandas(frame, source=training_url, name="churn-train", targets="churned"),
                         context="training")
        mlflow.sklearn.log_model(pipeline, name="model", serialization_format="skops",
                                 skops_trusted_types=["sklearn.tree._tree.Tree"], input_example=frame[FEATURES].head(3),
                                 registered_model_name=name)
    return pipeline, ModelVersion.objects.get(model__name=name, version=1)


@pytest.fixture
def logged(mlflow_client, engineer, live_server):
    """Our churn data in two versions (training, evaluation) and a model logged on the first."""
    environments_ensure()
    data = Dataset.objects.create(name="ext-churn", owner=engineer)
    training = make_version(data, churn(400, seed=1), engineer, name="train.csv")
    evaluation = make_version(data, churn(300, seed=2), engineer, name="eval.csv")
    pipeline, version = log_external_model(mlflow_client, churn(400, seed=1),
                                           f"{live_server.url}/datasets/versions/{training.pk}/", "ext-churn-model")
    return {"pipeline": pipeline, "version": version, "training": training, "evaluation": evaluation}


def typed(rows: list[dict]) -> pd.DataFrame:
    """The frame the notebook's pipeline takes: the signature's columns and dtypes."""
    return pd.DataFrame(rows)[FEATURES].astype({"tenure": "int64", "charges": "float64", "contract": object})


def test_an_external_version_is_promoted_deployed_served_and_watched(
        logged, mlflow_client, engineer, analyst, analyst2, client_for, token_for):
    version, evaluation = logged["version"], logged["evaluation"]
    api = client_for(engineer)

    # a promotion names the evaluation data; the target is inferred from the logged training data
    response = api.post(f"/api/v1/model-versions/{version.pk}/promotions/",
                        {"target_stage": "staging", "reason": "forest from the notebook",
                         "evaluation_dataset_version": evaluation.pk}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["evaluation_dataset_version"] == evaluation.pk and body["evaluation_target"] == "churned"
    assert "logged training data" in body["evaluation_target_how"]
    promotion = evaluated(version.promotions.get(pk=body["id"]))
    gates = {g["key"]: g for g in promotion.gates}
    assert set(gates) == {"deployable", "threshold", "champion", "signature", "validation", "staging_first"}
    assert gates["deployable"]["passed"] and "evaluation data" in gates["threshold"]["detail"]
    X_eval = typed(pd.DataFrame(churn(300, seed=2)).to_dict("records"))
    truth = churn(300, seed=2)["churned"]
    expected_accuracy = float((logged["pipeline"].predict(X_eval) == truth).mean())
    assert promotion.evidence["challenger"]["metrics"]["accuracy"] == pytest.approx(expected_accuracy)
    assert promotion.evidence["evaluation"]["rows_how"].startswith("the 300 rows")
    page = client_for(analyst).get(promotion.get_absolute_url())
    assert b'data-testid="evaluation"' in page.content and b"churned" in page.content

    # four-eyes: the engineer who logged it cannot approve, even holding the analyst role
    engineer.groups.add(Group.objects.get(name=ANALYST))
    refused = client_for(type(engineer).objects.get(pk=engineer.pk)).post(
        f"/api/v1/promotions/{promotion.pk}/approve/", {"comment": "mine", "override_reason": "x" * 12},
        content_type="application/json")
    assert refused.status_code == 403 and "MLflow client" in refused.content.decode()
    approved = client_for(analyst).post(f"/api/v1/promotions/{promotion.pk}/approve/",
                                        {"comment": "scored on our data", "override_reason": "accepted in tests"},
                                        content_type="application/json")
    assert approved.status_code == 200, approved.content
    version.refresh_from_db()
    assert version.stage == "staging"

    # deploy like ours; predictions and probabilities equal the pipeline's own on the typed frame
    deployed = client_for(analyst).post("/api/v1/deployments/", {"model_version": version.pk,
                                                                 "environment": "staging"},
                                        content_type="application/json")
    assert deployed.status_code == 201, deployed.content
    rows = [{"tenure": 5, "charges": 80.5, "contract": "monthly"}, {"tenure": 60, "charges": 40.0, "contract": "yearly"},
            {"tenure": 12, "charges": 65.25, "contract": "two-year"}]
    answer = api.post("/api/v1/predict/ext-churn-model/staging/", {"instances": rows}, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Token {token_for(engineer, 'predict')}")
    assert answer.status_code == 200, answer.content
    answered = answer.json()
    local = logged["pipeline"]
    assert answered["predictions"] == list(local.predict(typed(rows)))
    classes = [str(c) for c in local.classes_]
    assert [[p[c] for c in classes] for p in answered["probabilities"]] == local.predict_proba(typed(rows)).tolist()
    assert PredictionLog.objects.filter(deployment_id=deployed.json()["id"]).count() == 3
    # its deployment page opens, with a try-it form typed by the MLmodel signature (the run has no data of ours)
    page = client_for(analyst).get(f"/deployments/{deployed.json()['id']}/").content.decode()
    assert 'name="tenure" data-kind="number"' in page and 'name="contract" data-kind="text"' in page

    # bad input is refused against the signature, and logged as an error, not a prediction
    bad = api.post("/api/v1/predict/ext-churn-model/staging/", {"instances": [{"tenure": 2.5, "charges": "x",
                                                                               "contract": 3}]},
                   content_type="application/json")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"instances[0].tenure", "instances[0].charges",
                                                  "instances[0].contract"}
    assert PredictionLog.objects.filter(deployment_id=deployed.json()["id"]).count() == 3

    # a drift check against the training data the run logged, said plainly on the page
    policy = MonitorPolicy.objects.get(model=version.model, environment__name="staging")
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=1, include_interactive=True)  # our own tries count
    policy.refresh_from_db()
    report = drift_check(policy=policy)
    assert report.reference_dataset_version == logged["training"] and report.rows == 3
    assert {f["name"] for f in report.features} == set(FEATURES)
    page = client_for(analyst).get(policy.get_absolute_url()).content.decode()
    assert "the training data the run logged with mlflow.log_input" in page and "Cannot run here" in page

    # production: the evaluation data is proposed from the staging request; another analyst approves
    response = api.post(f"/api/v1/model-versions/{version.pk}/promotions/",
                        {"target_stage": "production", "reason": "behaved in staging"}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["evaluation_dataset_version"] == evaluation.pk
    production = evaluated(version.promotions.get(pk=response.json()["id"]))
    assert client_for(analyst2).post(f"/api/v1/promotions/{production.pk}/approve/",
                                     {"comment": "go", "override_reason": "accepted in tests"},
                                     content_type="application/json").status_code == 200

    live = client_for(analyst).post("/api/v1/deployments/", {"model_version": version.pk, "environment": "production"},
                                    content_type="application/json")
    assert live.status_code == 201, live.content
    served = api.post("/api/v1/predict/ext-churn-model/production/", {"instances": rows},
                      content_type="application/json", HTTP_AUTHORIZATION=f"Token {token_for(engineer, 'live')}")
    assert served.status_code == 200, served.content

    # the notebook loads exactly the version the production predict API serves
    from mlflow import MlflowClient

    holder = MlflowClient().get_model_version_by_alias("ext-churn-model", "production")
    assert int(holder.version) == Deployment.objects.get(pk=live.json()["id"]).model_version.version
    loaded = mlflow_client.pyfunc.load_model("models:/ext-churn-model@production")
    assert list(loaded.predict(typed(rows))) == served.json()["predictions"] == answered["predictions"]
    assert loaded.get_raw_model().predict_proba(typed(rows)).tolist() == [
        [p[c] for c in classes] for p in served.json()["probabilities"]]


def test_setting_production_from_the_client_is_refused_and_changes_nothing(logged, mlflow_client):
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    version = logged["version"]
    with pytest.raises(RestException) as caught:
        MlflowClient().set_registered_model_alias("ext-churn-model", "production", "1")
    assert caught.value.error_code == "PERMISSION_DENIED" and "promotion" in caught.value.message
    version.refresh_from_db()
    assert version.stage == "none" and not StageTransition.objects.filter(model_version=version).exists()
    assert not version.promotions.exists()
