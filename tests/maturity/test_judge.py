"""The criteria judged from hand-built facts, without a database: each one met, and not met
for each reason it can fail."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from apps.maturity import criteria as C
from apps.maturity.criteria import NO_POLICY, NO_PRODUCTION, REGISTRY, health_of, judge, level_from
from apps.maturity.facts import (
    ChangeFacts,
    DataFacts,
    DeploymentFacts,
    ModelFacts,
    PolicyFacts,
    PromotionFacts,
    ReportFacts,
    RetrainingFacts,
    RunFacts,
    Thresholds,
    VersionFacts,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
CFG = Thresholds(retraining_period_days=30, drift_period_days=2, performance_period_days=7, releases_window_days=90,
                 min_releases=2)
PASSED = [{"key": "threshold", "name": "threshold", "passed": True}, {"key": "champion", "name": "champion",
                                                                      "passed": True}]
RUN = RunFacts(id=11, label="exp #3", source="ci", source_label="CI pipeline", artifact_sha256="ab" * 32, job_id=21,
               job_status="succeeded", dataset_sha256="cd" * 32,
               spec={"algorithm": "logistic_regression", "split_seed": 0}, random_state=0, app_version="1.0.0",
               library_versions={"scikit-learn": "1.7.2"})
DATA = DataFacts(id=31, label="buyers v2", validation_status="pass", overridden_at=None)
VERSION = VersionFacts(id=41, label="buyers-model v2", run=RUN, data=DATA)
CHANGE = ChangeFacts(id=61, status="succeeded", auto_approved=True, deployment_id=71, smoke_passed_at=NOW - 2 * HOUR,
                     staging_promotion=PromotionFacts(id=51, gates=PASSED, override_reason=""))
POLICY = PolicyFacts(id=81, retrain_policy="on_drift", retrain_policy_label="When dataset drift opens an alert",
                     has_email=True, has_webhook=False)
REPORT = ReportFacts(id=91, created_at=NOW - HOUR, window_end=NOW - HOUR, status="ok", drifted_features=[],
                     drift_share=0.0, rows=500)
RETRAINED = RetrainingFacts(id=101, status="awaiting approval", created_at=NOW - 3 * DAY, finished_at=NOW - 2 * DAY,
                            model_version_id=41, trigger="drift")
ACTIVE = DeploymentFacts(id=73, previous_id=72, is_rollback=False, deployed_at=NOW - HOUR, retired_at=None,
                         is_production=True, environment="production")
ROLLED_BACK = DeploymentFacts(id=72, previous_id=None, is_rollback=True, deployed_at=NOW - 5 * HOUR,
                              retired_at=NOW - HOUR, is_production=True, environment="production")


def mature(**changes) -> ModelFacts:
    """A model that meets every criterion, with ``changes`` applied."""
    facts = ModelFacts(
        model_id=1, model_name="buyers-model", now=NOW, cfg=CFG, version=VERSION, promoted_at=NOW - HOUR,
        production_promotion=PromotionFacts(id=52, gates=PASSED, override_reason=""), staged_at=NOW - 3 * HOUR,
        change=CHANGE, policy=POLICY, last_report=REPORT, perf_report=replace(REPORT, id=92),
        last_retraining=RETRAINED, last_success=RETRAINED, deployments=(ACTIVE, ROLLED_BACK), releases=2)
    return replace(facts, **changes)


def with_run(**changes) -> ModelFacts:
    return mature(version=replace(VERSION, run=replace(RUN, **changes)))


def with_data(**changes) -> ModelFacts:
    return mature(version=replace(VERSION, data=replace(DATA, **changes)))


def result(facts: ModelFacts, key: str) -> dict:
    return REGISTRY[key].result(facts)


def labels(c: dict) -> str:
    return " | ".join(e["label"] for e in c["evidence"])


def test_a_mature_model_meets_every_criterion_and_is_level_two():
    criteria = judge(mature())
    assert [c["key"] for c in criteria if not c["met"]] == []
    assert all(c["hint"] == "" and c["hint_url"] == "" and c["evidence"] for c in criteria)
    assert level_from(criteria) == (2, 1.0)


def test_the_checklist_is_the_registry_in_order_with_levels_one_then_two():
    assert [key for key, _, _ in C.CRITERIA] == list(REGISTRY)
    levels = [level for _, level, _ in C.CRITERIA]
    assert levels == sorted(levels) and set(levels) == {1, 2}
    assert all(title for _, _, title in C.CRITERIA)


def test_a_criterion_is_added_in_one_place_and_judged_with_the_rest():
    @C.criterion("has_a_name", level=2, title="The model has a name", needs_production=False)
    def has_a_name(f):
        return C.Verdict(bool(f.model_name), [], "Name the model.", "/models/")

    try:
        added = judge(mature(model_name=""))[-1]
        assert added == {"key": "has_a_name", "level": 2, "title": "The model has a name", "met": False,
                         "evidence": [], "detail": "", "hint": "Name the model.", "hint_url": "/models/"}
        assert judge(mature())[-1]["met"]
        with pytest.raises(ValueError, match="registered twice"):
            C.criterion("has_a_name", level=2, title="again")(has_a_name)
    finally:
        del REGISTRY["has_a_name"]


def test_without_a_production_version_only_the_model_wide_criteria_are_judged():
    criteria = {c["key"]: c for c in judge(mature(version=None, production_promotion=None))}
    model_wide = {key for key, c in REGISTRY.items() if not c.needs_production}
    assert model_wide == {"continuous_training", "alerting", "releases"}
    for key, c in criteria.items():
        if key in model_wide:
            assert c["met"], key
        else:
            assert not c["met"] and c["hint"] == NO_PRODUCTION and c["detail"] == "no production version", key


def test_pipeline_run():
    c = result(mature(), "pipeline_run")
    assert c["met"] and "buyers-model v2 ← run exp #3" in labels(c) and c["detail"] == "source: CI pipeline"
    c = result(with_run(job_status="failed"), "pipeline_run")
    assert not c["met"] and "training job #21 (failed)" in labels(c) and c["hint_url"].endswith("/experiments/")
    assert not result(with_run(artifact_sha256=""), "pipeline_run")["met"]
    c = result(with_run(job_id=None, job_status=None), "pipeline_run")
    assert not c["met"] and "training job" not in labels(c)


def test_continuous_training():
    c = result(mature(), "continuous_training")
    assert c["met"] and "retraining #101 produced a version on 2026-11-29" in labels(c)
    c = result(mature(policy=replace(POLICY, retrain_policy="off", retrain_policy_label="Off")), "continuous_training")
    assert not c["met"] and "Turn retraining on" in c["hint"] and c["hint_url"] == "/monitoring/81/"
    stale = replace(RETRAINED, finished_at=NOW - 31 * DAY)
    c = result(mature(last_success=stale), "continuous_training")
    assert not c["met"] and "in the last 30 days" in c["hint"]
    assert not result(mature(last_success=None), "continuous_training")["met"]
    c = result(mature(policy=None), "continuous_training")
    assert not c["met"] and c["hint"] == NO_POLICY and c["detail"] == "no production monitor policy"


def test_data_validated():
    c = result(mature(), "data_validated")
    assert c["met"] and c["detail"] == "validation pass"
    assert result(with_data(validation_status="warn"), "data_validated")["met"]
    c = result(with_data(validation_status="fail"), "data_validated")
    assert not c["met"] and c["hint_url"].endswith("/datasets/versions/31/")
    c = result(with_data(validation_status="fail", overridden_at=NOW - DAY), "data_validated")
    assert not c["met"] and c["detail"] == "validation fail (overridden)"
    # an override made after the moment judged did not exist then
    assert result(with_data(overridden_at=NOW + DAY), "data_validated")["met"]
    assert not result(with_data(overridden_at=NOW - DAY), "data_validated")["met"]


def test_gates_passed():
    assert result(mature(), "gates_passed")["met"]
    failed = [dict(PASSED[0], passed=False), PASSED[1]]
    c = result(mature(production_promotion=PromotionFacts(id=52, gates=failed, override_reason="known")),
               "gates_passed")
    assert not c["met"] and "production request #52: failed threshold (overridden)" in labels(c)
    assert not result(mature(production_promotion=PromotionFacts(id=52, gates=[], override_reason="")),
                      "gates_passed")["met"]
    c = result(mature(production_promotion=None), "gates_passed")
    assert not c["met"] and c["detail"] == "no production promotion request" and "request" in c["hint"]


def test_lineage():
    c = result(mature(), "lineage")
    assert c["met"] and c["detail"] == "complete"
    c = result(with_run(app_version="", library_versions={}, spec={"algorithm": "x"}), "lineage")
    assert not c["met"] and c["detail"] == "missing split seed, app version, library versions"
    c = result(with_run(dataset_sha256="", random_state=None, spec={}), "lineage")
    assert c["detail"] == "missing dataset hash, spec, split seed, random state"


def test_staging_first():
    c = result(mature(), "staging_first")
    assert c["met"] and "buyers-model v2: staging 2026-12-01 09:00" in labels(c)
    c = result(mature(staged_at=None), "staging_first")
    assert not c["met"] and "never in staging" in labels(c)
    assert not result(mature(staged_at=NOW), "staging_first")["met"], "staged after it went to production"


def test_drift_checks():
    c = result(mature(), "drift_checks")
    assert c["met"] and "drift report 2026-12-01 11:00: ok" in labels(c)
    c = result(mature(last_report=replace(REPORT, created_at=NOW - 3 * DAY)), "drift_checks")
    assert not c["met"] and "at least every 2 days" in c["hint"]
    c = result(mature(last_report=None), "drift_checks")
    assert not c["met"] and c["evidence"] == []
    c = result(mature(policy=None), "drift_checks")
    assert not c["met"] and c["hint"] == NO_POLICY


def test_ci_pipeline():
    c = result(mature(), "ci_pipeline")
    assert c["met"] and "pipeline change #61 (succeeded)" in labels(c)
    c = result(with_run(source="manual"), "ci_pipeline")
    assert not c["met"] and "/api/v1/models/1/pipeline-changes/" in c["hint"]
    assert not result(mature(change=None), "ci_pipeline")["met"]
    assert not result(mature(change=replace(CHANGE, staging_promotion=None)), "ci_pipeline")["met"]
    ungated = replace(CHANGE, staging_promotion=PromotionFacts(id=51, gates=[], override_reason=""))
    assert not result(mature(change=ungated), "ci_pipeline")["met"]


def test_auto_staging():
    c = result(mature(), "auto_staging")
    assert c["met"] and "staging deployment #71" in labels(c)
    c = result(mature(change=replace(CHANGE, auto_approved=False)), "auto_staging")
    assert not c["met"] and "auto-approve staging" in c["hint"]
    c = result(mature(change=replace(CHANGE, deployment_id=None)), "auto_staging")
    assert not c["met"] and "staging deployment" not in labels(c)
    assert not result(mature(change=None), "auto_staging")["met"]


def test_smoke_test():
    c = result(mature(), "smoke_test")
    assert c["met"] and c["detail"] == "smoke test passed 2026-12-01 10:00"
    late = replace(CHANGE, smoke_passed_at=NOW)
    assert not result(mature(change=late), "smoke_test")["met"], "a smoke test after the approval does not count"
    c = result(mature(change=replace(CHANGE, smoke_passed_at=None)), "smoke_test")
    assert not c["met"] and c["detail"] == "no smoke test"
    assert not result(mature(change=None), "smoke_test")["met"]


def test_alerting():
    c = result(mature(), "alerting")
    assert c["met"] and "alert channel: email" in labels(c) and "performance measured" in labels(c)
    both = replace(POLICY, has_webhook=True)
    assert "alert channel: email + webhook" in labels(result(mature(policy=both), "alerting"))
    silent = replace(POLICY, has_email=False)
    c = result(mature(policy=silent), "alerting")
    assert not c["met"] and "no alert channel" in labels(c) and "Add alert emails" in c["hint"]
    c = result(mature(perf_report=replace(REPORT, created_at=NOW - 8 * DAY)), "alerting")
    assert not c["met"] and "within 7 days" in c["hint"]
    assert not result(mature(perf_report=None), "alerting")["met"]
    assert result(mature(policy=None), "alerting")["hint"] == NO_POLICY


def test_rollback():
    c = result(mature(), "rollback")
    assert c["met"] and "#73 (can roll back to #72)" in labels(c) and "rollback exercised in production" in labels(c)
    first = replace(ACTIVE, previous_id=None)
    c = result(mature(deployments=(first,)), "rollback")
    assert not c["met"] and "nothing to roll back to" in labels(c)
    never = (ACTIVE, replace(ROLLED_BACK, is_rollback=False))
    assert not result(mature(deployments=never), "rollback")["met"], "a target alone is not enough"
    retired = (replace(ACTIVE, retired_at=NOW - HOUR / 2), ROLLED_BACK)
    assert not result(mature(deployments=retired), "rollback")["met"], "no active production deployment"
    assert result(mature(deployments=(replace(ACTIVE, retired_at=NOW + HOUR), ROLLED_BACK)), "rollback")["met"]


def test_releases():
    c = result(mature(), "releases")
    assert c["met"] and c["detail"] == "2 of 2" and "2 production releases in 90 days" in labels(c)
    c = result(mature(releases=1), "releases")
    assert not c["met"] and c["detail"] == "1 of 2" and "1 production release in" in labels(c)


def test_health_from_the_latest_report_and_open_alerts():
    assert health_of(None, True) == "unknown"
    assert health_of(REPORT, False) == "ok"
    assert health_of(REPORT, True) == "drifting"
    assert health_of(replace(REPORT, status="drifting"), False) == "drifting"
    assert health_of(replace(REPORT, drifted_features=["x1"]), False) == "warning"
    assert health_of(replace(REPORT, status="not_enough_data"), False) == "warning"
