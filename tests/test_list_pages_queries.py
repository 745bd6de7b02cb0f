"""Every list page costs the same number of queries for 3N rows as for N (see tests/support/queries.py)."""

from __future__ import annotations

from datetime import timedelta
from itertools import count, cycle

import pytest
from django.utils import timezone

from apps.core.models import JobStatus
from apps.registry.models import PromotionStatus, Stage
from tests.factories import (
    AlertFactory,
    AuditEventFactory,
    BatchScoreFactory,
    DatasetVersionFactory,
    DeploymentFactory,
    DriftReportFactory,
    ExperimentFactory,
    FittedRunFactory,
    JobFactory,
    ModelVersionFactory,
    PredictionLogFactory,
    PromotionRequestFactory,
    RetrainingFactory,
    RunFactory,
    environment_named,
    policy_of,
)
from tests.support.queries import assert_constant_queries

pytestmark = pytest.mark.django_db


def link(obj) -> str:
    return f'href="{obj.get_absolute_url()}"'


@pytest.fixture
def run(engineer, experiment):
    """One fitted run that versions of many models share (a run is registered once per model)."""
    return FittedRunFactory(experiment=experiment, created_by=engineer)


def deployed(run, analyst, env="production"):
    stage = Stage.PRODUCTION if env == "production" else Stage.STAGING
    version = ModelVersionFactory(run=run, stage=stage, approver=analyst)
    return DeploymentFactory(environment=env, model_version=version, deployed_by=analyst)


def test_the_experiments_list(viewer, client_for, engineer):
    dataset = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer).dataset

    def add(k):
        made = ExperimentFactory.create_batch(k, dataset=dataset, created_by=engineer)
        for e in made:
            RunFactory(experiment=e)
        return [link(e) for e in made]

    assert_constant_queries(client_for(viewer), "/experiments/", add)


def test_an_experiments_runs_page(viewer, client_for, experiment):
    kinds = cycle([(JobStatus.SUCCEEDED, "logistic_regression"), (JobStatus.QUEUED, "knn_classifier"),
                   (JobStatus.FAILED, "logistic_regression"), (JobStatus.SUCCEEDED, "knn_classifier"),
                   (JobStatus.RUNNING, "logistic_regression")])

    def add(k):
        runs = []
        for _ in range(k):
            status, algorithm = next(kinds)
            runs.append(RunFactory(experiment=experiment, status=status, algorithm=algorithm))
        return [link(r) for r in runs]

    assert_constant_queries(client_for(viewer), f"/experiments/{experiment.pk}/", add)


@pytest.mark.parametrize("sort", ["-number", "-accuracy", "f1"])
def test_an_experiments_runs_page_with_finished_runs_and_charts(viewer, client_for, engineer, experiment, sort):
    """Finished runs carry metrics and params: the table, its sort and both charts read them."""
    algorithms = cycle(["logistic_regression", "knn_classifier"])

    def add(k):
        runs = [FittedRunFactory(experiment=experiment, created_by=engineer, algorithm=next(algorithms))
                for _ in range(k)]
        return [link(r) for r in runs]

    assert_constant_queries(client_for(viewer), f"/experiments/{experiment.pk}/?sort={sort}", add)


def test_the_registry_list(viewer, client_for, analyst, run):
    stages = cycle([Stage.NONE, Stage.STAGING, Stage.PRODUCTION])

    def add(k):
        versions = [ModelVersionFactory(run=run, stage=next(stages), approver=analyst) for _ in range(k)]
        return [link(v.model) for v in versions]

    assert_constant_queries(client_for(viewer), "/models/", add)


def test_a_model_page(viewer, client_for, engineer, analyst, experiment):
    stages = cycle([Stage.NONE, Stage.STAGING, Stage.NONE])
    algorithms = cycle(["logistic_regression", "knn_classifier"])
    versions = []

    def add(k):
        made = []
        for _ in range(k):
            run = FittedRunFactory(experiment=experiment, created_by=engineer, algorithm=next(algorithms))
            made.append(ModelVersionFactory(run=run, model_name="grows", stage=next(stages), approver=analyst))
        versions.extend(made)
        return [link(v) for v in made]

    assert_constant_queries(client_for(viewer), lambda: versions[0].model.get_absolute_url(), add)


def test_the_promotion_queue(viewer, client_for, analyst, run):
    statuses = cycle([PromotionStatus.PENDING, PromotionStatus.APPROVED, PromotionStatus.REJECTED])

    def add(k):
        made = [PromotionRequestFactory(model_version=ModelVersionFactory(run=run), status=next(statuses),
                                        decided_by=analyst) for _ in range(k)]
        return [link(p) for p in made]

    assert_constant_queries(client_for(viewer), "/models/promotions/?status=all", add)


def test_the_deployments_list(viewer, client_for, analyst, run):
    environments = cycle(["production", "staging"])

    def add(k):
        made = [deployed(run, analyst, next(environments)) for _ in range(k)]
        for d in made:
            PredictionLogFactory.bulk(3, deployment=d)
        return [link(d) for d in made]

    assert_constant_queries(client_for(viewer), "/deployments/", add)


def test_a_deployment_page_with_traffic_and_batches(viewer, client_for, analyst, run):
    deployment = deployed(run, analyst)

    def add(k):
        logs = PredictionLogFactory.bulk(k, deployment=deployment)
        batches = BatchScoreFactory.create_batch(k, deployment=deployment)
        return [str(log.request_id) for log in logs] + [link(b) for b in batches]

    assert_constant_queries(client_for(viewer), deployment.get_absolute_url(), add)


def test_a_deployment_page_with_a_long_history(viewer, client_for, engineer, analyst, experiment):
    """Two versions take turns in staging: every deploy adds a row to the page's history."""
    first = ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer),
                                model_name="turns", stage=Stage.PRODUCTION, approver=analyst)
    second = ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer,
                                                      algorithm="knn_classifier"),
                                 model_name="turns", stage=Stage.STAGING, approver=analyst)
    staging, turns, made = environment_named("staging"), cycle([first, second]), []

    def add(k):
        new = [DeploymentFactory(environment=staging, model_version=next(turns), deployed_by=analyst)
               for _ in range(k)]
        made.extend(new)
        return [link(d) for d in new]

    # 3 and then 9 deploys both end with `first` serving: the page loads the same model each time
    assert_constant_queries(client_for(viewer), lambda: made[-1].get_absolute_url(), add)


def test_the_deploy_pickers_versions(analyst, client_for, engineer, experiment):
    algorithms = cycle(["logistic_regression", "knn_classifier"])

    def add(k):
        made = [ModelVersionFactory(run=FittedRunFactory(experiment=experiment, created_by=engineer,
                                                         algorithm=next(algorithms)), model_name=f"picked-{i % 2}")
                for i in range(k)]
        return [f'<option value="{v.pk}">' for v in made]

    assert_constant_queries(client_for(analyst), "/deployments/", add)


def test_the_monitoring_overview(viewer, client_for, analyst, run):
    def add(k):
        policies = []
        for i in range(k):
            policy = policy_of(deployed(run, analyst))
            report = DriftReportFactory(policy=policy)
            AlertFactory(opened_by=report, status="open" if i % 2 else "resolved")
            policies.append(policy)
        return [link(p) for p in policies]

    assert_constant_queries(client_for(viewer), "/monitoring/", add)


def test_a_monitoring_policy_page(viewer, client_for, analyst, run):
    policy = policy_of(deployed(run, analyst))
    PredictionLogFactory.bulk(30, deployment=policy.model.deployments.get(),
                              created_at=timezone.now() - timedelta(hours=1, minutes=30))
    hours = count(1)

    def add(k):
        reports = [DriftReportFactory(policy=policy, hours_ago=next(hours)) for _ in range(k)]
        alerts = [AlertFactory(opened_by=r) for r in reports]
        retrainings = [RetrainingFactory(policy=policy, alert=a) for a in alerts]
        return [link(o) for o in reports + alerts + retrainings]

    assert_constant_queries(client_for(viewer), policy.get_absolute_url(), add)


def test_the_jobs_list(viewer, client_for, engineer, experiment):
    targets = cycle([experiment, experiment.dataset, None])
    statuses = cycle([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED, JobStatus.FAILED])

    def add(k):
        jobs = [JobFactory(status=next(statuses), target=next(targets)) for _ in range(k)]
        return [link(j) for j in jobs]

    assert_constant_queries(client_for(viewer), "/jobs/", add)


def test_the_audit_log(admin_user, client_for, engineer, experiment):
    objects = cycle([experiment, experiment.dataset, None])
    notes = count()

    def add(k):
        events = [AuditEventFactory(obj=next(objects), note=f"guard event {next(notes)}.") for _ in range(k)]
        return [f"<td>{e.note}</td>" for e in events]

    assert_constant_queries(client_for(admin_user), "/audit/", add)


def test_the_datasets_list(viewer, client_for, engineer):
    def add(k):
        versions = DatasetVersionFactory.create_batch(k, dataset__owner=engineer, created_by=engineer, rows=60)
        return [link(v.dataset) for v in versions]

    assert_constant_queries(client_for(viewer), "/datasets/", add)


def test_a_datasets_page_with_many_versions(viewer, client_for, engineer):
    dataset = DatasetVersionFactory(dataset__owner=engineer, created_by=engineer, rows=60).dataset

    def add(k):
        versions = DatasetVersionFactory.create_batch(k, dataset=dataset, created_by=engineer, rows=60)
        return [f'href="{v.get_absolute_url()}"' for v in versions]

    assert_constant_queries(client_for(viewer), f"/datasets/{dataset.pk}/", add)
