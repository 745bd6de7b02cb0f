"""Every list endpoint under /api/v1/ costs the same number of queries for 3N rows as for N."""

from __future__ import annotations

from itertools import count, cycle

import pytest

from apps.core.models import JobStatus
from apps.registry.models import PromotionStatus, Stage
from tests.factories import (
    DatasetVersionFactory,
    DeploymentFactory,
    DriftReportFactory,
    ExperimentFactory,
    FittedRunFactory,
    ModelVersionFactory,
    PredictionLogFactory,
    PromotionRequestFactory,
    RunFactory,
    policy_of,
)
from tests.support.queries import assert_constant_queries

pytestmark = pytest.mark.django_db


def url_of(obj) -> str:
    return f"url={obj.get_absolute_url()}"


@pytest.fixture
def run(engineer, experiment):
    return FittedRunFactory(experiment=experiment, created_by=engineer)


def test_the_datasets_endpoint(viewer, client_for, engineer):
    def add(k):
        versions = DatasetVersionFactory.create_batch(k, dataset__owner=engineer, created_by=engineer, rows=60)
        return [f"name={v.dataset.name}" for v in versions]

    assert_constant_queries(client_for(viewer), "/api/v1/datasets/", add)


def test_a_datasets_versions_endpoint(viewer, client_for, engineer):
    dataset = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer, rows=60).dataset

    def add(k):
        versions = DatasetVersionFactory.create_batch(k, dataset=dataset, created_by=engineer, rows=60)
        return [f"sha256={v.sha256}" for v in versions]

    assert_constant_queries(client_for(viewer), f"/api/v1/datasets/{dataset.pk}/", add)


def test_the_experiments_endpoint(viewer, client_for, engineer, experiment):
    def add(k):
        made = ExperimentFactory.create_batch(k, dataset=experiment.dataset, created_by=engineer)
        return [f"name={e.name}" for e in made]

    assert_constant_queries(client_for(viewer), "/api/v1/experiments/", add)


def test_an_experiments_runs_endpoint(viewer, client_for, experiment):
    statuses = cycle([JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.FAILED])

    def add(k):
        return [url_of(RunFactory(experiment=experiment, status=next(statuses))) for _ in range(k)]

    assert_constant_queries(client_for(viewer), f"/api/v1/experiments/{experiment.pk}/", add)


def test_an_experiments_runs_list_endpoint(viewer, client_for, experiment):
    statuses = cycle([JobStatus.SUCCEEDED, JobStatus.QUEUED, JobStatus.FAILED])

    def add(k):
        return [url_of(RunFactory(experiment=experiment, status=next(statuses))) for _ in range(k)]

    assert_constant_queries(client_for(viewer), f"/api/v1/experiments/{experiment.pk}/runs/", add)


def test_a_datasets_versions_list_endpoint(viewer, client_for, engineer):
    dataset = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer, rows=60).dataset

    def add(k):
        versions = DatasetVersionFactory.create_batch(k, dataset=dataset, created_by=engineer, rows=60)
        return [f"sha256={v.sha256}" for v in versions]

    assert_constant_queries(client_for(viewer), f"/api/v1/datasets/{dataset.pk}/versions/", add)


def test_the_models_endpoint(viewer, client_for, analyst, run):
    stages = cycle([Stage.NONE, Stage.STAGING, Stage.PRODUCTION])

    def add(k):
        versions = [ModelVersionFactory(run=run, stage=next(stages), approver=analyst) for _ in range(k)]
        return [f"name={v.model.name}" for v in versions]

    assert_constant_queries(client_for(viewer), "/api/v1/models/", add)


def test_a_models_versions_endpoint(viewer, client_for, engineer, analyst, experiment):
    stages = cycle([Stage.NONE, Stage.STAGING, Stage.NONE])
    versions = []

    def add(k):
        made = [ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer),
                                    model_name="grows", stage=next(stages), approver=analyst) for _ in range(k)]
        versions.extend(made)
        return [url_of(v) for v in made]

    assert_constant_queries(client_for(viewer), lambda: f"/api/v1/models/{versions[0].model_id}/", add)


@pytest.mark.parametrize("listing", ["versions", "history"])
def test_a_models_versions_and_history_endpoints(viewer, client_for, engineer, analyst, experiment, listing):
    stages = cycle([Stage.STAGING, Stage.NONE, Stage.PRODUCTION])
    versions = []

    def add(k):
        made = [ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer),
                                    model_name="grows", stage=next(stages), approver=analyst) for _ in range(k)]
        versions.extend(made)
        if listing == "versions":
            return [url_of(v) for v in made]
        return [f"version={v.version}" for v in made if v.stage != Stage.NONE]

    assert_constant_queries(client_for(viewer), lambda: f"/api/v1/models/{versions[0].model_id}/{listing}/", add)


def test_the_promotions_endpoint(viewer, client_for, analyst, run):
    statuses = cycle([PromotionStatus.PENDING, PromotionStatus.APPROVED, PromotionStatus.REJECTED])

    def add(k):
        made = [PromotionRequestFactory(model_version=ModelVersionFactory(run=run), status=next(statuses),
                                        decided_by=analyst) for _ in range(k)]
        return [url_of(p) for p in made]

    assert_constant_queries(client_for(viewer), "/api/v1/promotions/", add)


def test_the_deployments_endpoint(viewer, client_for, analyst, run):
    environments = cycle(["production", "staging"])

    def add(k):
        made = []
        for _ in range(k):
            env = next(environments)
            version = ModelVersionFactory(run=run, approver=analyst,
                                          stage=Stage.PRODUCTION if env == "production" else Stage.STAGING)
            made.append(DeploymentFactory(environment=env, model_version=version, deployed_by=analyst))
            PredictionLogFactory.bulk(3, deployment=made[-1])
        return [url_of(d) for d in made]

    assert_constant_queries(client_for(viewer), "/api/v1/deployments/", add)


def test_a_deployments_drift_reports_endpoint(viewer, client_for, analyst, run):
    version = ModelVersionFactory(run=run, stage=Stage.PRODUCTION, approver=analyst)
    deployment = DeploymentFactory(model_version=version, deployed_by=analyst)
    policy, hours = policy_of(deployment), count(1)

    def add(k):
        return [url_of(DriftReportFactory(policy=policy, hours_ago=next(hours))) for _ in range(k)]

    assert_constant_queries(client_for(viewer), f"/api/v1/deployments/{deployment.pk}/drift/", add)


def test_the_maturity_endpoint(viewer, client_for, analyst, run):
    def add(k):
        made = []
        for _ in range(k):
            version = ModelVersionFactory(run=run, stage=Stage.PRODUCTION, approver=analyst)
            DeploymentFactory(model_version=version, deployed_by=analyst)
            made.append(version.model)
        return [f"model={m.name}" for m in made]

    assert_constant_queries(client_for(viewer), "/api/v1/maturity/", add)
