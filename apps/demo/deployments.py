"""Demo deployments with traffic sent through the real predict-and-log path.

Production churn traffic covers the last 30 days (back-dated, hour by hour); from day
18 the customers it sees drift (higher charges, more support calls), so the monitoring
demo can find the drift honestly. Half of the requests get their true outcome back as
feedback, through the real feedback service.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.demo.datasets import churn_frame
from apps.deployments.models import Deployment, Environment, PredictionLog, PredictionSource
from apps.deployments.services import deployment_create, feedback_attach
from apps.deployments.serving import predict_and_log, target_of
from apps.registry.models import ModelVersion

DAYS = 30
DRIFT_FROM_DAY = 18
INSTANCES_PER_HOUR = 30


def _deploy(user, model_name: str, stage: str, environment: str) -> Deployment | None:
    version = ModelVersion.objects.filter(model__name=model_name, stage=stage).first()
    if version is None:
        return None
    env = Environment.objects.get(name=environment)
    current = Deployment.objects.filter(model=version.model, environment=env, status="active").first()
    if current is not None:
        return current
    return deployment_create(user=user, version=version, environment=env, note="demo")


def churn_traffic(deployment: Deployment, analyst) -> int:
    """30 days of hourly traffic, drifting from DRIFT_FROM_DAY on; returns instances sent."""
    features = [f["name"] for f in deployment.model_version.signature]
    target = target_of(deployment)
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    rng = np.random.default_rng(7)
    sent = 0
    for hour in range(DAYS * 24):
        day = hour // 24
        shift = 0.0 if day < DRIFT_FROM_DAY else min(1.5, 0.5 + 0.1 * (day - DRIFT_FROM_DAY))
        frame = churn_frame(INSTANCES_PER_HOUR, seed=10_000 + hour, month=50 + hour, shift=shift)
        if day >= DRIFT_FROM_DAY:
            frame["contract"] = rng.choice(["monthly", "yearly", "two-year"], len(frame), p=[0.8, 0.15, 0.05])
        instances = frame[features].to_dict("records")
        when = start + timedelta(hours=hour, minutes=int(rng.integers(0, 59)))
        body = predict_and_log(target=target, instances=instances, source=PredictionSource.DEMO, now=when)
        labelled = [{"request_id": rid, "label": label}
                    for rid, label, keep in zip(body["request_ids"], frame["churned"], rng.random(len(frame)) < 0.5,
                                                strict=True) if keep]
        if labelled:
            feedback_attach(user=analyst, items=labelled)
        sent += len(instances)
    return sent


def seed() -> str:
    User = get_user_model()
    analyst = User.objects.get(username="analyst")
    production = _deploy(analyst, "churn-model", "production", "production")
    _deploy(analyst, "cancer-model", "staging", "staging")
    _deploy(analyst, "diabetes-model", "staging", "staging")
    if production is None:
        return "no production churn model to deploy"
    if PredictionLog.objects.filter(deployment_id=production.pk).exists():
        return "traffic already sent"
    sent = churn_traffic(production, analyst)
    return f"{sent} production predictions over {DAYS} days"
