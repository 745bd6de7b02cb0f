"""Demo maturity: levels reached through real actions, with snapshots taken at the real moments.

diabetes-model stays at level 0 (staging only); churn-model has what the earlier demo steps
gave it (production, drift checks, retraining); cancer-model climbs: CI pipeline changes
through the real service (trained, gated, approved to staging by policy, deployed, smoke
tested), production approvals by "analyst", a rehearsed rollback, labelled traffic, a drift
check and a retraining. A snapshot is taken after each stage, so the history shows the climb.
Back-dated daily snapshots are computed from the records as they stood on each day.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model

from apps.core.models import Job
from apps.core.services import job_create
from apps.datasets.services import load_version_frame
from apps.demo.wait import wait_for
from apps.deployments.models import Deployment, Environment
from apps.deployments.services import (
    deployment_create,
    deployment_rollback,
    feedback_attach,
    predict_and_log,
    target_of,
)
from apps.maturity.models import MaturitySettings, MaturitySnapshot, PipelineChange
from apps.maturity.services import (
    pipeline_change_create,
    pipeline_policy_set,
    snapshot_all,
    snapshot_backfill,
)
from apps.monitoring.models import MonitorPolicy, Retraining
from apps.monitoring.services import CHECK_JOB, policy_ensure, retraining_request
from apps.registry.models import PromotionRequest, RegisteredModel
from apps.registry.services import promotion_approve

logger = logging.getLogger(__name__)
CLIMBER = "cancer-model"


def _users():
    User = get_user_model()
    return (User.objects.get(username="engineer"), User.objects.get(username="analyst"),
            User.objects.get(username="admin"))


def _change(engineer, model, commit: str, params: dict) -> PipelineChange:
    change = pipeline_change_create(user=engineer, model=model, source_commit=commit,
                                    spec={"algorithm": "logistic_regression", "params": params})
    wait_for(lambda: PipelineChange.objects.get(pk=change.pk).status != "running", what=f"pipeline change {commit}",
             timeout=600)
    change.refresh_from_db()
    return change


def _approve_production(analyst, change: PipelineChange) -> None:
    promotion = change.production_promotion
    wait_for(lambda: PromotionRequest.objects.get(pk=promotion.pk).gates_done, what="the production gates",
             timeout=300)
    promotion.refresh_from_db()
    promotion_approve(user=analyst, promotion=promotion, comment="CI change: staged and smoke-tested; go live.",
                      override_reason="Demo: accepted knowingly despite the failed gate." if promotion.failed_gates
                      else "")


def _production(analyst, change: PipelineChange) -> Deployment:
    return deployment_create(user=analyst, version=change.model_version,
                             environment=Environment.objects.get(name="production"), note="demo: CI release")


def _traffic(analyst, deployment: Deployment, rows: int = 200) -> None:
    version = deployment.model_version
    frame = load_version_frame(version.run.dataset_version).sample(n=rows, random_state=5, replace=True)
    names = [f["name"] for f in version.signature]
    instances = [{k: (None if v != v else v) for k, v in r.items()} for r in frame[names].to_dict("records")]
    body = predict_and_log(target=target_of(deployment), instances=instances, source="demo")
    target = version.run.experiment.target
    feedback_attach(user=analyst, items=[{"request_id": rid, "label": label}
                                         for rid, label in zip(body["request_ids"], frame[target], strict=True)])


def seed() -> str:
    if MaturitySnapshot.objects.filter(trigger="event").exists():
        return "maturity already seeded"
    engineer, analyst, admin = _users()
    cfg = MaturitySettings.load()
    backfilled = snapshot_backfill(days=cfg.snapshot_backfill_days)
    snapshot_all(trigger="event")
    model = RegisteredModel.objects.filter(name=CLIMBER).first()
    if model is None:
        return f"{backfilled} back-dated snapshots; no {CLIMBER} to climb"
    steps = []
    try:
        pipeline_policy_set(user=admin, model=model, auto_approve_staging=True)
        first = _change(engineer, model, "demo-ci-0001", {"C": 1.0})
        steps.append(f"change 1 {first.status}")
        if first.status != "succeeded":
            return f"{backfilled} back-dated; {', '.join(steps)}: {first.reason}"
        _approve_production(analyst, first)
        d1 = _production(analyst, first)
        policy = policy_ensure(model=model, environment=d1.environment)
        MonitorPolicy.objects.filter(pk=policy.pk).update(alert_emails="ml-oncall@example.com", min_rows=50,
                                                          retrain_policy="on_drift")
        snapshot_all(trigger="event")

        second = _change(engineer, model, "demo-ci-0002", {"C": 0.5})
        steps.append(f"change 2 {second.status}")
        if second.status == "succeeded":
            _approve_production(analyst, second)
            d2 = _production(analyst, second)
            restored = deployment_rollback(user=analyst, deployment=d2, reason="Demo: rollback rehearsal")
            deployment_create(user=analyst, version=second.model_version, environment=d2.environment,
                              note="demo: forward again after the rehearsal")
            steps.append(f"rollback rehearsed (#{restored.pk})")
        snapshot_all(trigger="event")

        active = Deployment.objects.filter(model=model, environment__name="production", status="active").first()
        _traffic(analyst, active)
        job = job_create(kind=CHECK_JOB, target=policy, message="Demo: drift check of the new release")
        wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, what="the demo drift check", timeout=300)
        retraining = retraining_request(user=engineer, policy=policy)
        wait_for(lambda: Retraining.objects.get(pk=retraining.pk).status in ("awaiting approval", "failed"),
                 what="the demo retraining", timeout=600)
        steps.append("drift check and retraining done")
    except Exception as exc:  # the demo goes on; the snapshot records whatever was reached
        logger.exception("maturity demo stopped early")
        steps.append(f"stopped: {exc}")
    rows = snapshot_all(trigger="event")
    levels = ", ".join(f"{r.model.name} L{r.level}" for r in rows)
    return f"{backfilled} back-dated snapshots; {'; '.join(steps)}; now {levels}"
