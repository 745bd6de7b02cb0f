"""The factories make the rows the product makes: real files, real profiles, real artifacts, real approvals."""

from __future__ import annotations

import hashlib

import pytest

from apps.core.models import Job, JobStatus
from apps.datasets.services import PROFILE_JOB, load_version_frame
from apps.deployments.models import PredictionLog
from apps.ml.gates import score_on_holdout
from apps.ml.persist import load_pipeline
from apps.ml.profile import profile_table
from apps.ml.train import TrainingSpec
from apps.registry.models import PromotionStatus, Stage
from tests.factories import (
    DatasetVersionFactory,
    DeploymentFactory,
    FittedRunFactory,
    ModelVersionFactory,
    PredictionLogFactory,
    RunFactory,
    UserFactory,
    policy_of,
)

pytestmark = pytest.mark.django_db


def test_a_dataset_version_is_a_stored_file_profiled_by_our_own_code(engineer):
    version = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer, rows=80)
    with version.file.open("rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == version.sha256
    frame = load_version_frame(version)
    expected = profile_table(frame, version.schema)
    assert {name: c.pop("reference") for name, c in expected["columns"].items()} == version.reference
    assert expected == version.profile and version.rows == 80 and version.usable_for_training
    assert Job.objects.get(kind=PROFILE_JOB, target_id=version.pk).status == JobStatus.SUCCEEDED


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED])
def test_a_run_that_did_not_succeed_has_its_job_in_that_status_and_no_artifact(experiment, status):
    run = RunFactory(experiment=experiment, status=status)
    assert run.status == status and not run.artifact_sha256 and not run.metrics


def test_a_fitted_run_predicts_and_records_its_own_holdout_scores(experiment):
    run = FittedRunFactory(experiment=experiment, algorithm="knn_classifier")
    pipeline = load_pipeline(run.artifact.read(), expected_sha256=run.artifact_sha256)
    frame = load_version_frame(run.dataset_version)
    rescored = score_on_holdout(pipeline, frame, TrainingSpec.from_dict(run.spec), run.classes)
    assert rescored["metrics"] == run.metrics and rescored["rows"] == run.n_holdout
    assert run.status == "succeeded" and run.classes == ["no", "yes"]
    assert [f["name"] for f in run.signature] == ["x1", "x2", "color"]


@pytest.mark.parametrize("stage", [Stage.NONE, Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED])
def test_a_version_reaches_its_stage_through_approved_promotions(experiment, stage):
    analyst = UserFactory(analyst=True)
    version = ModelVersionFactory(run=FittedRunFactory(experiment=experiment), stage=stage, approver=analyst)
    assert version.stage == stage
    path = [(t.from_stage, t.to_stage) for t in version.transitions.order_by("created_at", "id")]
    assert path == {Stage.NONE: [], Stage.STAGING: [("none", "staging")],
                    Stage.PRODUCTION: [("none", "staging"), ("staging", "production")],
                    Stage.ARCHIVED: [("none", "staging"), ("staging", "production"),
                                     ("production", "archived")]}[stage]
    assert all(t.promotion.status == PromotionStatus.APPROVED and t.promotion.decided_by == analyst
               for t in version.transitions.all())


def test_a_deployment_serves_a_version_of_the_stage_its_environment_needs_and_is_watched(db):
    production, staging = DeploymentFactory(), DeploymentFactory(environment="staging")
    assert production.model_version.stage == Stage.PRODUCTION and staging.model_version.stage == Stage.STAGING
    assert policy_of(production).environment.name == "production"


def test_prediction_logs_are_written_in_one_insert(django_assert_num_queries):
    deployment = DeploymentFactory()
    with django_assert_num_queries(1):
        PredictionLogFactory.bulk(500, deployment=deployment)
    assert PredictionLog.objects.filter(deployment=deployment, model_version_id_logged=deployment.model_version_id,
                                        instance_index=0).count() == 500
