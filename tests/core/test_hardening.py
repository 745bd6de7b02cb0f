"""Inputs a review found could break pages: each answers cleanly now."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.core.api_errors import Conflict
from apps.core.models import Job
from apps.datasets.models import Dataset
from apps.datasets.services import dataset_version_create
from apps.registry.services import model_version_register, promotion_approve, promotion_request
from tests.factories import csv_file, make_experiment, make_version, mixed_frame, trained_run


@pytest.fixture
def experiment(engineer):
    d = Dataset.objects.create(name="hardening", owner=engineer)
    make_version(d, mixed_frame(120), engineer)
    return make_experiment(engineer, d, name="hardening-exp")


def test_an_unknown_algorithm_in_the_parameter_fragment_is_escaped(viewer, client_for, experiment):
    response = client_for(viewer).get(f"/experiments/{experiment.pk}/params/",
                                      {"algorithm": "<img src=x onerror=alert(1)>"})
    assert response.status_code == 400
    assert b"<img" not in response.content and b"&lt;img" in response.content


def test_an_unknown_algorithm_on_the_experiment_page_falls_back_to_the_first(viewer, client_for, experiment):
    assert client_for(viewer).get(f"/experiments/{experiment.pk}/?algorithm=nope").status_code == 200


def test_an_impossible_date_is_a_clear_400_not_a_crash(engineer, analyst, client_for, experiment):
    version = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="dated")
    api = client_for(analyst).get(f"/api/v1/models/{version.model_id}/production-at/?at=2024-02-30")
    assert api.status_code == 400 and "at" in api.json()["error"]["fields"]
    page = client_for(analyst).get(f"/models/{version.model_id}/?at=2024-13-45")
    assert page.status_code == 200 and b"Not a date" in page.content


def test_non_numeric_ids_in_the_deploy_form_are_refused_with_a_message(analyst, client_for):
    response = client_for(analyst).post("/deployments/deploy/", {"model_version": "abc", "environment": "x"},
                                        follow=True)
    assert response.status_code == 200 and b"Choose a model version and an environment" in response.content


def test_model_names_must_fit_in_the_prediction_url(engineer, experiment):
    with pytest.raises(ValidationError, match="prediction URL"):
        model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="churn/v2")


def test_a_viewer_cannot_run_drift_checks_or_send_feedback(viewer, client_for):
    response = client_for(viewer).post("/api/v1/feedback/", {"request_id": "x", "label": 1},
                                       content_type="application/json")
    assert response.status_code == 403


def test_a_promotion_whose_gates_job_failed_can_be_requested_again(engineer, analyst, experiment):
    version = model_version_register(user=engineer, run=trained_run(engineer, experiment), model_name="gated")
    first = promotion_request(user=engineer, version=version, target_stage="staging", reason="first try")
    Job.objects.filter(pk=first.job_id).update(status="failed", error="dataset file missing")
    first.refresh_from_db()
    with pytest.raises(Conflict, match="gates job failed"):
        promotion_approve(user=analyst, promotion=first, comment="ok")
    second = promotion_request(user=engineer, version=version, target_stage="staging", reason="second try")
    first.refresh_from_db()
    assert first.status == "rejected" and "gates job failed" in first.decision_comment
    assert second.status == "pending"


def test_a_cancelled_profiling_job_marks_the_version_failed_and_the_same_bytes_profile_again(
    engineer, viewer, client_for
):
    d = Dataset.objects.create(name="cancelled-profile", owner=engineer)
    path = csv_file(mixed_frame(40))
    version, _ = dataset_version_create(user=engineer, dataset=d, path=path, original_filename="a.csv")
    Job.objects.filter(target_id=version.pk, kind="datasets.profile").update(status="cancelled")
    client_for(viewer).get(f"/datasets/versions/{version.pk}/")
    version.refresh_from_db()
    assert version.status == "failed" and "cancelled" in version.error
    again, created = dataset_version_create(user=engineer, dataset=d, path=path, original_filename="a.csv")
    assert not created and again.status == "processing"
    assert Job.objects.filter(target_id=version.pk, kind="datasets.profile", status="queued").exists()
