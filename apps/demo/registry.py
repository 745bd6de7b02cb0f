"""Demo registry: versions in every stage, and requests pending, approved and rejected,
all through the real services (gates evaluated by the worker)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.core.models import Job
from apps.demo.wait import wait_for
from apps.experiments.models import Experiment
from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel
from apps.registry.services import (
    model_version_register,
    promotion_approve,
    promotion_reject,
    promotion_request,
)


def _users():
    User = get_user_model()
    return (User.objects.get(username="engineer"), User.objects.get(username="analyst"),
            User.objects.get(username="analyst2"))


def _run(experiment_name: str, algorithm: str):
    experiment = Experiment.objects.get(name=experiment_name)
    return experiment.runs.filter(algorithm=algorithm, parent__isnull=True, job__status="succeeded").order_by("number").first()


def _register(engineer, experiment_name: str, algorithm: str, model_name: str) -> ModelVersion | None:
    run = _run(experiment_name, algorithm)
    if run is None:
        return None
    existing = ModelVersion.objects.filter(run=run, model__name=model_name).first()
    return existing or model_version_register(user=engineer, run=run, model_name=model_name)


def _request(engineer, version: ModelVersion, stage: str, reason: str) -> PromotionRequest:
    promotion = promotion_request(user=engineer, version=version, target_stage=stage, reason=reason)
    wait_for(lambda: Job.objects.get(pk=promotion.job_id).is_finished, what=f"the gates of {version}", timeout=300)
    promotion.refresh_from_db()
    return promotion


def _approve(analyst, promotion: PromotionRequest, comment: str) -> None:
    override = "Demo: accepted knowingly despite the failed gate." if promotion.failed_gates else ""
    promotion_approve(user=analyst, promotion=promotion, comment=comment, override_reason=override)


def seed() -> str:
    engineer, analyst, analyst2 = _users()
    if RegisteredModel.objects.exists():
        return "registry already seeded"
    v1 = _register(engineer, "churn-prediction", "logistic_regression", "churn-model")
    v2 = _register(engineer, "churn-prediction", "random_forest_classifier", "churn-model")
    v3 = _register(engineer, "churn-prediction", "hist_gradient_boosting_classifier", "churn-model")
    v4 = _register(engineer, "churn-prediction", "knn_classifier", "churn-model")
    # What an admin does in the Django admin: churn is hard to predict, so its F1 bar is 0.6.
    RegisteredModel.objects.filter(name="churn-model").update(threshold_value=0.6)
    _approve(analyst, _request(engineer, v1, "staging", "First churn model: a readable baseline."), "Baseline is fine for staging.")
    _approve(analyst2, _request(engineer, v1, "production", "Baseline behaved in staging for a week."), "Go live with the baseline.")
    _approve(analyst, _request(engineer, v2, "staging", "Random forest beats the baseline on F1."), "Better on every metric; stage it.")
    _approve(analyst2, _request(engineer, v2, "production", "Forest is stable in staging."), "Replace the baseline.")
    promotion_reject(user=analyst, promotion=_request(engineer, v4, "staging", "KNN as a cheap alternative."),
                     comment="Worse than the champion and slow to predict; not worth staging.")
    _request(engineer, v3, "staging", "Gradient boosting: best cross-validated F1 so far.")

    c1 = _register(engineer, "cancer-diagnosis", "logistic_regression", "cancer-model")
    c2 = _register(engineer, "cancer-diagnosis", "random_forest_classifier", "cancer-model")
    _approve(analyst, _request(engineer, c1, "staging", "High recall on malignant cases."), "Staging approved.")
    _request(engineer, c1, "production", "Ready for the clinic pilot.")
    del c2

    d1 = _register(engineer, "diabetes-progression", "ridge", "diabetes-model")
    d2 = _register(engineer, "diabetes-progression", "hist_gradient_boosting_regressor", "diabetes-model")
    _approve(analyst, _request(engineer, d1, "staging", "Linear baseline for progression."), "OK for staging.")
    del d2
    return f"{ModelVersion.objects.count()} versions, {PromotionRequest.objects.count()} promotion requests"
