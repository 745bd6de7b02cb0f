"""The facts of every model load in a constant number of queries, whatever the number of models
and of their rows (stage history, requests, CI changes, reports, retrainings, alerts, deployments)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.deployments.models import Environment
from apps.deployments.services import deployment_create, deployment_rollback
from apps.maturity.criteria import evaluate_all
from apps.maturity.models import MaturitySettings, PipelineChange
from apps.monitoring.models import Alert, DriftReport, MonitorPolicy, Retraining
from apps.registry.models import ModelVersion, PromotionRequest, StageTransition
from apps.registry.services import model_version_register

pytestmark = pytest.mark.django_db


def _model_with_history(served, engineer, analyst, name: str) -> None:
    """A model in production with rows of every kind the criteria read (sharing the served run)."""
    run, production = served["version"].run, Environment.objects.get(name="production")
    now = timezone.now()
    first = model_version_register(user=engineer, run=run, model_name=name)
    second = ModelVersion.objects.create(model=first.model, version=2, run=run, artifact_name=first.artifact_name,
                                         artifact_sha256=first.artifact_sha256, signature=first.signature)
    for version in (first, second):
        staging, promotion = (PromotionRequest.objects.create(
            model_version=version, target_stage=stage, reason="tests", status="approved",
            gates=[{"name": "g", "passed": True}]) for stage in ("staging", "production"))
        StageTransition.objects.create(model_version=version, from_stage="none", to_stage="staging", actor=analyst,
                                       promotion=staging)
        StageTransition.objects.create(model_version=version, from_stage="staging", to_stage="production",
                                       actor=analyst, promotion=promotion)
        ModelVersion.objects.filter(model=version.model, stage="production").update(stage="archived")
        ModelVersion.objects.filter(pk=version.pk).update(stage="production")
        version.refresh_from_db()
        deployment = deployment_create(user=analyst, version=version, environment=production)
        PipelineChange.objects.create(model=version.model, source_commit=f"{name}-{version.version}", run=run,
                                      model_version=version, staging_promotion=staging, status="succeeded",
                                      auto_approved=True, deployment=deployment, smoke_passed_at=now)
    deployment_rollback(user=analyst, deployment=deployment, reason="rehearsal")
    deployment_create(user=analyst, version=second, environment=production)  # forward again: a target exists
    policy = MonitorPolicy.objects.get(model=first.model, environment=production)
    for hours in (3, 2, 1):
        report = DriftReport.objects.create(policy=policy, window_start=now - timedelta(hours=hours + 1),
                                            window_end=now - timedelta(hours=hours), rows=100, status="drifting",
                                            performance={"metrics": {"accuracy": 0.9}})
        Retraining.objects.create(policy=policy, trigger="drift", source_version=second, model_version=second,
                                  status="awaiting approval", finished_at=now - timedelta(hours=hours))
    Alert.objects.create(policy=policy, kind="drift", message="drift", opened_at=now - timedelta(hours=1),
                         opened_by=report)


def _queries_of_evaluate_all(expected_models: int) -> int:
    with CaptureQueriesContext(connection) as ctx:
        results = evaluate_all()
    extras = [r for r in results if r.model.name.startswith("extra-")]
    assert len(extras) == expected_models
    for r in extras:  # every kind of row was read, so the count below covers them all
        assert r.production_version is not None and r.health == "drifting" and r.last_retraining is not None
        assert r.releases == 2 and r.last_report is not None
        met = {c["key"] for c in r.criteria if c["met"]}
        assert {"gates_passed", "staging_first", "drift_checks", "continuous_training", "rollback"} <= met, met
    return len(ctx.captured_queries)


def test_the_facts_of_3n_models_load_in_as_many_queries_as_n(served, engineer, analyst):
    MaturitySettings.load()  # the thresholds row exists (its first read creates it)
    for i in range(2):
        _model_with_history(served, engineer, analyst, f"extra-{i}")
    small = _queries_of_evaluate_all(2)
    for i in range(2, 6):
        _model_with_history(served, engineer, analyst, f"extra-{i}")
    assert _queries_of_evaluate_all(6) == small
