"""A model trained elsewhere reaches level 2 by the same road as ours: CI logs a version with the MLflow
client and sends "CI logged version N at commit X"; the change takes that as its train step and the real
worker runs the gates (on our evaluation data), policy approval, staging deployment and smoke test.
Maturity judges it on its own evidence (the git commit tag, the logged dataset) with hints that fit it."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.datasets.models import Dataset
from apps.deployments.services import environments_ensure
from apps.maturity.models import PipelineChange
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel
from apps.registry.services import promotion_approve, promotion_request
from tests.conftest import wait_until
from tests.factories import evaluated, make_version
from tests.maturity.conftest import criterion
from tests.tracking.conftest import forest_pipeline
from tests.tracking.helpers import Protocol, log_version, logged_input

FEATURES = ["tenure", "charges", "contract"]
COMMIT = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"


def _logged(engineer, token: str, frame, *, name: str, commit: str = COMMIT, with_inputs: bool = True):
    """What CI's training script does with the MLflow client: training and evaluation inputs of ours, a commit."""
    dataset = Dataset.objects.create(name=f"{name}-data", owner=engineer)
    training = make_version(dataset, frame, engineer, name="train.csv")
    evaluation = make_version(dataset, frame.sample(frac=0.5, random_state=2), engineer, name="eval.csv")
    inputs = [logged_input(f"http://testserver/datasets/versions/{training.pk}/", frame),
              logged_input(f"http://testserver/datasets/versions/{evaluation.pk}/", frame, context="evaluation",
                           name="holdout")] if with_inputs else []
    log_version(Protocol(Client(), token), name=name, pipeline=forest_pipeline(frame), frame=frame,
                features=FEATURES, inputs=inputs, commit=commit)
    return RegisteredModel.objects.get(name=name), evaluation


@pytest.fixture
def ci_worker(worker):
    worker.stop()  # a fresh process: content type ids change between transactional tests
    worker.start()
    return worker


def test_ci_logged_version_is_the_train_step_and_the_model_reaches_level_two(
        ci_worker, engineer, analyst, admin_user, token_for, churn_frame, client_for):
    from apps.maturity.services import pipeline_policy_set

    environments_ensure()
    model, evaluation = _logged(engineer, token_for(engineer), churn_frame, name="ci-ext-model")
    pipeline_policy_set(user=admin_user, model=model, auto_approve_staging=True)
    response = client_for(engineer).post(f"/api/v1/models/{model.pk}/pipeline-changes/",
                                         {"source_commit": COMMIT[:8], "model_version": 1},
                                         content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["steps"][0]["key"] == "train" and body["steps"][0]["status"] == "succeeded"
    assert f"CI logged {model.name} v1 at commit {COMMIT[:8]}" in body["steps"][0]["detail"]

    change = wait_until(lambda: PipelineChange.objects.exclude(status="running").filter(pk=body["id"]).first(),
                        timeout=180, message="the pipeline change to finish")
    assert change.status == "succeeded", change.reason
    assert [s.key for s in change.steps.all()] == ["train", "gates", "approve_staging", "deploy_staging",
                                                   "smoke_test", "request_production"]
    staging = change.staging_promotion
    assert staging.status == "approved" and staging.decided_by.username == "mlops-policy"
    assert staging.evaluation_dataset_version == evaluation  # proposed from the run's evaluation input
    assert change.deployment.environment.name == "staging" and change.deployment.model_version.is_external
    assert change.smoke["passed"] and change.smoke["answered"] == change.smoke["rows"] > 0
    production = PromotionRequest.objects.get(pk=change.production_promotion_id)
    assert production.status == "pending" and production.evaluation_dataset_version == evaluation
    wait_until(lambda: PromotionRequest.objects.get(pk=production.pk).gates_done, timeout=90,
               message="the production gates")
    production.refresh_from_db()
    promotion_approve(user=analyst, promotion=production, comment="CI change looks good",
                      override_reason="accepted in tests" if production.failed_gates else "")

    for key in ("pipeline_run", "lineage", "data_validated", "ci_pipeline", "auto_staging", "smoke_test"):
        judged = criterion(model, key)
        assert judged["met"], (key, judged)
    assert "commit 9e8d7c6b5a4f" in criterion(model, "pipeline_run")["detail"]


@pytest.mark.django_db
def test_a_ci_change_whose_commit_is_not_the_runs_is_refused_and_writes_nothing(
        engineer, token_for, churn_frame, client_for):
    model, _ = _logged(engineer, token_for(engineer), churn_frame, name="wrong-commit-model")
    url = f"/api/v1/models/{model.pk}/pipeline-changes/"
    client = client_for(engineer)
    refused = client.post(url, {"source_commit": "0000000deadbeef", "model_version": 1},
                          content_type="application/json")
    assert refused.status_code == 400 and "source_commit" in refused.json()["error"]["fields"]
    assert COMMIT[:40] in str(refused.json()["error"]["fields"]["source_commit"])
    unknown = client.post(url, {"source_commit": COMMIT, "model_version": 7}, content_type="application/json")
    assert unknown.status_code == 400 and "has no version 7" in str(unknown.json()["error"]["fields"])
    both = client.post(url, {"source_commit": COMMIT, "model_version": 1, "spec": {"algorithm": "ridge"}},
                       content_type="application/json")
    assert both.status_code == 400 and "spec" in both.json()["error"]["fields"]
    assert not PipelineChange.objects.exists() and not PromotionRequest.objects.exists()


@pytest.mark.django_db
def test_maturity_hints_for_a_model_trained_elsewhere_name_the_mlflow_client(
        engineer, analyst, token_for, churn_frame):
    model, evaluation = _logged(engineer, token_for(engineer), churn_frame, name="bare-ext-model", commit="",
                                with_inputs=False)
    RegisteredModel.objects.filter(pk=model.pk).update(require_staging_first=False)
    version = ModelVersion.objects.get(model=model)
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="production",
                                            reason="tests", evaluation_dataset_version=evaluation.pk,
                                            evaluation_target="churned"))
    promotion_approve(user=analyst, promotion=promotion, comment="ok",
                      override_reason="accepted in tests" if promotion.failed_gates else "")

    lineage = criterion(model, "lineage")
    assert not lineage["met"] and lineage["detail"] == "missing git commit, training data"
    assert "mlflow.source.git.commit" in lineage["hint"] and "mlflow.log_input" in lineage["hint"]
    assert "spec" not in lineage["hint"]
    pipeline_run = criterion(model, "pipeline_run")
    assert not pipeline_run["met"] and "mlflow.sklearn.log_model" in pipeline_run["hint"]
    data = criterion(model, "data_validated")
    assert not data["met"] and "mlflow.log_input" in data["hint"]
    ci = criterion(model, "ci_pipeline")
    assert not ci["met"] and '"model_version"' in ci["hint"] and "MLflow client" in ci["hint"]
