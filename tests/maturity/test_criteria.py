"""Each criterion flips with its evidence, both ways; levels at their boundaries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Job
from apps.datasets.models import DatasetVersion
from apps.deployments.models import Environment
from apps.deployments.services import deployment_create, deployment_rollback
from apps.experiments.models import Run
from apps.maturity.criteria import CRITERIA, level_from
from apps.maturity.models import MaturitySettings, PipelineChange
from apps.monitoring.models import MonitorPolicy, Retraining
from apps.monitoring.services import drift_check
from apps.registry.models import PromotionRequest, StageTransition
from tests.factories import production_ready_version
from tests.maturity.conftest import criterion
from tests.monitoring.conftest import send

pytestmark = pytest.mark.django_db


def urls(c):
    return [e["url"] for e in c["evidence"]]


def test_pipeline_run(served):
    model, version = served["model"], served["version"]
    c = criterion(model, "pipeline_run")
    assert c["met"] and version.run.get_absolute_url() in urls(c)
    Job.objects.filter(pk=version.run.job_id).update(status="failed")
    c = criterion(model, "pipeline_run")
    assert not c["met"] and c["hint"] and c["hint_url"]


def test_continuous_training(served):
    model, policy, version = served["model"], served["policy"], served["version"]
    c = criterion(model, "continuous_training")
    assert not c["met"] and "retraining" in c["hint"].lower()
    r = Retraining.objects.create(policy=policy, trigger="manual", source_version=version, model_version=version,
                                  status="awaiting approval", finished_at=timezone.now())
    c = criterion(model, "continuous_training")
    assert c["met"] and r.get_absolute_url() in urls(c)
    assert not criterion(model, "continuous_training", at=timezone.now() + timedelta(days=31))["met"]
    MonitorPolicy.objects.filter(pk=policy.pk).update(retrain_policy="off")
    c = criterion(model, "continuous_training")
    assert not c["met"] and "Turn retraining on" in c["hint"]


def test_data_validated(served):
    model, data = served["model"], served["version"].run.dataset_version
    c = criterion(model, "data_validated")
    assert c["met"] and data.get_absolute_url() in urls(c)
    DatasetVersion.objects.filter(pk=data.pk).update(validation_status="fail", overridden_at=timezone.now(),
                                                     override_reason="known issue")
    c = criterion(model, "data_validated")
    assert not c["met"] and "overridden" in c["detail"]


def test_gates_passed(served):
    model = served["model"]
    promotion = PromotionRequest.objects.get(model_version=served["version"], target_stage="production")
    PromotionRequest.objects.filter(pk=promotion.pk).update(
        gates=[dict(g, passed=True) for g in promotion.gates], override_reason="")
    c = criterion(model, "gates_passed")
    assert c["met"] and promotion.get_absolute_url() in urls(c)
    gates = [dict(g, passed=True) for g in promotion.gates]
    gates[0]["passed"] = False
    PromotionRequest.objects.filter(pk=promotion.pk).update(gates=gates, override_reason="accepted knowingly")
    c = criterion(model, "gates_passed")
    assert not c["met"] and "overridden" in c["evidence"][0]["label"]


def test_lineage(served):
    model, run = served["model"], served["version"].run
    assert criterion(model, "lineage")["met"]
    Run.objects.filter(pk=run.pk).update(app_version="", library_versions={})
    c = criterion(model, "lineage")
    assert not c["met"] and "app version" in c["detail"] and "library versions" in c["detail"]


def test_staging_first(served):
    model, version = served["model"], served["version"]
    c = criterion(model, "staging_first")
    assert c["met"] and version.get_absolute_url() in urls(c)
    StageTransition.objects.filter(model_version=version, to_stage="staging").delete()
    c = criterion(model, "staging_first")
    assert not c["met"] and "never in staging" in c["evidence"][0]["label"]


def test_drift_checks(served):
    model, policy, deployment = served["model"], served["policy"], served["deployment"]
    assert not criterion(model, "drift_checks")["met"]
    window = send(deployment, hours_ago=1, rows=120, seed=1)
    report = drift_check(policy=policy, window_start=window[0], window_end=window[1])
    c = criterion(model, "drift_checks")
    assert c["met"] and report.get_absolute_url() in urls(c)
    assert not criterion(model, "drift_checks", at=timezone.now() + timedelta(days=3))["met"]


def _ci_change(served, **fields):
    version = served["version"]
    Run.objects.filter(pk=version.run_id).update(source="ci")
    staging = PromotionRequest.objects.get(model_version=version, target_stage="staging")
    return PipelineChange.objects.create(model=served["model"], source_commit="abc123", run=version.run,
                                         model_version=version, staging_promotion=staging, status="succeeded",
                                         **fields)


def test_ci_pipeline(served):
    model = served["model"]
    c = criterion(model, "ci_pipeline")
    assert not c["met"] and "pipeline-changes" in c["hint"]
    change = _ci_change(served)
    c = criterion(model, "ci_pipeline")
    assert c["met"] and change.get_absolute_url() in urls(c)


def test_auto_staging(served, analyst):
    model = served["model"]
    change = _ci_change(served)
    assert not criterion(model, "auto_staging")["met"]
    PipelineChange.objects.filter(pk=change.pk).update(auto_approved=True, deployment=served["deployment"])
    c = criterion(model, "auto_staging")
    assert c["met"] and change.get_absolute_url() in urls(c)


def test_smoke_test(served):
    model, version = served["model"], served["version"]
    promoted = StageTransition.objects.get(model_version=version, to_stage="production").created_at
    change = _ci_change(served, smoke_passed_at=promoted + timedelta(seconds=5))
    c = criterion(model, "smoke_test")
    assert not c["met"], "a smoke test after the production approval does not count"
    PipelineChange.objects.filter(pk=change.pk).update(smoke_passed_at=promoted - timedelta(seconds=5))
    c = criterion(model, "smoke_test")
    assert c["met"] and change.get_absolute_url() in urls(c)


def test_alerting(served, analyst):
    model, policy, deployment = served["model"], served["policy"], served["deployment"]
    MonitorPolicy.objects.filter(pk=policy.pk).update(alert_emails="", webhook_url="")
    assert not criterion(model, "alerting")["met"]
    window = send(deployment, hours_ago=1, rows=120, seed=2, analyst=analyst)
    report = drift_check(policy=policy, window_start=window[0], window_end=window[1])
    assert "metrics" in report.performance
    c = criterion(model, "alerting")
    assert not c["met"] and "alert emails" in c["hint"]
    MonitorPolicy.objects.filter(pk=policy.pk).update(alert_emails="oncall@example.com")
    c = criterion(model, "alerting")
    assert c["met"] and report.get_absolute_url() in urls(c)


def test_rollback(served, engineer, analyst):
    model = served["model"]
    c = criterion(model, "rollback")
    assert not c["met"] and "nothing to roll back to" in c["evidence"][0]["label"]
    v2 = production_ready_version(engineer, analyst, served["experiment"], algorithm="random_forest_classifier",
                                  params={"n_estimators": 10}, model_name="mature")
    d2 = deployment_create(user=analyst, version=v2, environment=Environment.objects.get(name="production"))
    assert not criterion(model, "rollback")["met"], "a target alone is not enough: a rollback must be exercised"
    restored = deployment_rollback(user=analyst, deployment=d2, reason="rehearsal")
    d3 = deployment_create(user=analyst, version=v2, environment=Environment.objects.get(name="production"))
    c = criterion(model, "rollback")
    assert c["met"] and restored.get_absolute_url() in urls(c) and d3.get_absolute_url() in urls(c)


def test_releases(served):
    model = served["model"]
    MaturitySettings.objects.update_or_create(pk=1, defaults={"min_releases": 2})
    c = criterion(model, "releases")
    assert not c["met"] and c["detail"] == "1 of 2"
    MaturitySettings.objects.filter(pk=1).update(min_releases=1)
    assert criterion(model, "releases")["met"]
    assert not criterion(model, "releases", at=timezone.now() + timedelta(days=91))["met"]


def _criteria(met: dict[str, bool]):
    return [{"key": k, "level": lvl, "met": met.get(k, False)} for k, lvl, _ in CRITERIA]


def test_level_boundaries():
    l1 = [k for k, lvl, _ in CRITERIA if lvl == 1]
    l2 = [k for k, lvl, _ in CRITERIA if lvl == 2]
    assert level_from(_criteria({})) == (0, 0.0)
    level, progress = level_from(_criteria(dict.fromkeys(l1[:-1], True)))
    assert level == 0 and progress == pytest.approx((len(l1) - 1) / len(l1))
    assert level_from(_criteria(dict.fromkeys(l1, True))) == (1, 0.0)
    level, progress = level_from(_criteria(dict.fromkeys(l1 + l2[:-1], True)))
    assert level == 1 and progress == pytest.approx((len(l2) - 1) / len(l2))
    assert level_from(_criteria(dict.fromkeys(l1 + l2, True))) == (2, 1.0)
    # level 2 needs level 1: every level-2 criterion without one level-1 criterion stays level 0
    level, _ = level_from(_criteria(dict.fromkeys(l1[1:] + l2, True)))
    assert level == 0


def test_no_production_version_is_level_zero(engineer):
    from apps.datasets.models import Dataset
    from apps.maturity.criteria import evaluate_all
    from apps.registry.services import model_version_register
    from tests.factories import make_experiment, make_version, mixed_frame, trained_run

    d = Dataset.objects.create(name="young-data", owner=engineer)
    make_version(d, mixed_frame(200), engineer)
    version = model_version_register(user=engineer, run=trained_run(engineer, make_experiment(engineer, d)),
                                     model_name="young")
    (result,) = evaluate_all()
    assert result.model == version.model and result.level == 0 and result.production_version is None
    assert all(not c["met"] for c in result.criteria)
    assert all(c["hint"] and c["hint_url"] for c in result.criteria)
