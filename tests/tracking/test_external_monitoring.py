"""Monitoring a deployed version trained elsewhere: the drift reference it is judged against (said on the
page), retraining refused here, and a drift alert that tells its owner, with links, instead of retraining."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from apps.core.models import Job
from apps.datasets.models import Dataset
from apps.deployments.models import Environment
from apps.deployments.services import deployment_create, environments_ensure
from apps.deployments.serving import predict_and_log, target_of
from apps.monitoring.external import OWNER_EVENT
from apps.monitoring.models import Alert, MonitorPolicy, Retraining
from apps.monitoring.services import alert_notify, drift_check, retraining_request
from apps.registry.models import ModelVersion
from apps.registry.services import promotion_approve, promotion_request
from tests.factories import evaluated, make_version
from tests.tracking.conftest import forest_pipeline
from tests.tracking.helpers import Protocol, log_version, logged_input

pytestmark = pytest.mark.django_db

FEATURES = ["tenure", "charges", "contract"]



def _deployed(engineer, analyst, token, frame, *, log_training: bool):
    """A notebook's forest, logged through the protocol, promoted on our evaluation data and deployed to staging."""
    environments_ensure()
    dataset = Dataset.objects.create(name="watched-churn", owner=engineer)
    training = make_version(dataset, frame, engineer, name="train.csv")
    evaluation = make_version(dataset, frame.sample(frac=0.5, random_state=4), engineer, name="eval.csv")
    inputs = [logged_input(f"http://testserver/datasets/versions/{training.pk}/", frame)] if log_training else []
    log_version(Protocol(Client(), token), name="watched-ext", pipeline=forest_pipeline(frame), frame=frame,
                features=FEATURES, inputs=inputs, commit="abc1234def")
    version = ModelVersion.objects.get(model__name="watched-ext")
    promotion = evaluated(promotion_request(user=engineer, version=version, target_stage="staging", reason="tests",
                                            evaluation_dataset_version=evaluation.pk, evaluation_target="churned"))
    promotion_approve(user=analyst, promotion=promotion, comment="ok",
                      override_reason="accepted in tests" if promotion.failed_gates else "")
    version.refresh_from_db()
    deployment = deployment_create(user=analyst, version=version, environment=Environment.objects.get(name="staging"))
    policy = MonitorPolicy.objects.get(model=version.model, environment__name="staging")
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=50, drift_share=0.3, retrain_policy="on_drift")
    policy.refresh_from_db()
    return {"version": version, "deployment": deployment, "policy": policy, "training": training,
            "evaluation": evaluation}


def _send_drifted(deployment, frame, rows: int = 300):
    """Customers unlike the training data: far higher charges and longer tenure, mostly monthly contracts."""
    rng = np.random.default_rng(11)
    shifted = frame.sample(rows, replace=True, random_state=5).assign(
        charges=lambda f: f["charges"] + 150, tenure=lambda f: f["tenure"] + 200,
        contract=rng.choice(["monthly", "yearly"], rows, p=[0.95, 0.05]))
    when = timezone.now() - timedelta(hours=1)
    predict_and_log(target=target_of(deployment), instances=shifted[FEATURES].to_dict("records"), now=when,
                    source="test")
    return when - timedelta(minutes=1), when + timedelta(minutes=1)


def test_a_drift_alert_tells_the_owner_with_links_and_starts_no_retraining(
        engineer, analyst, token_for, churn_frame, client_for, django_capture_on_commit_callbacks):
    watched = _deployed(engineer, analyst, token_for(engineer), churn_frame, log_training=True)
    policy, version = watched["policy"], watched["version"]
    window = _send_drifted(watched["deployment"], churn_frame)
    with django_capture_on_commit_callbacks(execute=True):
        report = drift_check(policy=policy, window_start=window[0], window_end=window[1])
    assert report.reference_dataset_version == watched["training"]
    assert report.dataset_drift is True and report.status == "drifting", report.features
    alert = Alert.objects.get(policy=policy, kind="drift")
    assert not Retraining.objects.exists()  # on_drift is the policy, but its code is not ours to run
    events = list(Job.objects.filter(kind="monitoring.notify", target_id=alert.pk).values_list("params__event",
                                                                                               flat=True))
    assert OWNER_EVENT in events

    alert_notify(alert=alert, event=OWNER_EVENT)
    sent = mail.outbox[-1]
    assert sent.to == [engineer.email] and "retrain watched-ext" in sent.subject
    for link in (alert.get_absolute_url(), report.get_absolute_url(), version.get_absolute_url()):
        assert link in sent.body
    assert "cannot be retrained here" in sent.body and "pipeline-changes" in sent.body
    alert.refresh_from_db()
    assert alert.notifications[-1]["event"] == OWNER_EVENT
    assert alert.notifications[-1]["outcomes"] == [{"channel": "owner", "ok": True, "to": [engineer.email]}]

    page = client_for(analyst).get(policy.get_absolute_url()).content.decode()
    assert 'data-testid="retrain-elsewhere"' in page and "Cannot run here" in page
    assert "Retrain now" not in page


def test_retraining_by_hand_is_refused_with_the_reason_and_writes_nothing(
        engineer, analyst, token_for, churn_frame, client_for):
    watched = _deployed(engineer, analyst, token_for(engineer), churn_frame, log_training=True)
    policy = watched["policy"]
    with pytest.raises(ValidationError) as caught:
        retraining_request(user=engineer, policy=policy)
    assert "cannot be retrained here" in str(caught.value)
    response = client_for(engineer).post(f"/monitoring/{policy.pk}/retrain/", follow=True)
    assert response.status_code == 200 and b"cannot be retrained here" in response.content
    assert not Retraining.objects.exists() and not Job.objects.filter(kind__startswith="monitoring.retrain").exists()


def test_without_logged_training_data_drift_is_judged_against_the_evaluation_data(
        engineer, analyst, token_for, churn_frame, client_for):
    watched = _deployed(engineer, analyst, token_for(engineer), churn_frame, log_training=False)
    policy = watched["policy"]
    window = _send_drifted(watched["deployment"], churn_frame)
    report = drift_check(policy=policy, window_start=window[0], window_end=window[1])
    assert report.reference_dataset_version == watched["evaluation"] and report.rows == 300
    page = client_for(analyst).get(policy.get_absolute_url()).content.decode()
    assert "the evaluation data of promotion request" in page and "the run logged no training data" in page


def test_live_performance_is_compared_with_what_we_measured_on_the_evaluation_data(
        engineer, analyst, token_for, churn_frame, client_for):
    from apps.deployments.services import feedback_attach

    watched = _deployed(engineer, analyst, token_for(engineer), churn_frame, log_training=True)
    version, policy = watched["version"], watched["policy"]
    # the client logged its own "f1"; the gates and the monitoring never take it for a measurement of ours
    ModelVersion.objects.filter(pk=version.pk).update(metrics={"f1": 0.999, "accuracy": 0.999})
    rows = churn_frame.sample(60, random_state=9)
    when = timezone.now() - timedelta(hours=1)
    body = predict_and_log(target=target_of(watched["deployment"]), instances=rows[FEATURES].to_dict("records"),
                           now=when, source="test")
    feedback_attach(user=analyst, items=[{"request_id": r, "label": y}
                                         for r, y in zip(body["request_ids"], rows["churned"], strict=True)])
    report = drift_check(policy=policy, window_start=when - timedelta(minutes=1), window_end=when + timedelta(minutes=1))
    measured = version.promotions.get(target_stage="staging").evidence["challenger"]["metrics"]
    assert report.performance["labelled_rows"] == 60 and report.performance["metrics"]["accuracy"] > 0
    assert report.performance["holdout"] == measured and measured["f1"] != 0.999
    page = client_for(analyst).get(policy.get_absolute_url()).content.decode()
    assert "0.999" not in page
