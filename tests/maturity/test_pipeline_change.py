"""The CI pipeline change end to end on the real worker: train, gates, policy approval, staging,
smoke test, production request; then an analyst approves and the model's level-2 evidence holds."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied

from apps.core.roles import ANALYST
from apps.datasets.models import Dataset
from apps.deployments.services import environments_ensure
from apps.experiments.models import Run
from apps.maturity.models import PipelineChange, PipelinePolicy
from apps.registry.models import ModelVersion
from apps.registry.services import pending_count_for, promotion_approve
from tests.conftest import wait_until
from tests.factories import make_experiment, make_version, mixed_frame, production_ready_version
from tests.maturity.conftest import criterion


@pytest.fixture
def ci_model(engineer, analyst):
    environments_ensure()
    d = Dataset.objects.create(name="ci-data", owner=engineer)
    make_version(d, mixed_frame(600, seed=3), engineer)
    experiment = make_experiment(engineer, d, name="ci-exp")
    return production_ready_version(engineer, analyst, experiment, model_name="ci-model").model


@pytest.fixture
def ci_worker(worker):
    """The worker restarted: it creates jobs with targets, and a flush between transactional tests gives the
    content types new ids that a long-lived worker process would still hold in its ContentType cache."""
    worker.stop()
    worker.start()
    return worker


def _wait_finished(change_id):
    def done():
        change = PipelineChange.objects.get(pk=change_id)
        return change if change.status != "running" else None
    return wait_until(done, timeout=180, message="the pipeline change to finish")


def test_pipeline_change_end_to_end(ci_worker, ci_model, engineer, analyst, admin_user, client_for):
    from apps.maturity.services import pipeline_policy_set

    pipeline_policy_set(user=admin_user, model=ci_model, auto_approve_staging=True)
    response = client_for(engineer).post(
        f"/api/v1/models/{ci_model.pk}/pipeline-changes/",
        {"source_commit": "0a1b2c3d", "spec": {"algorithm": "logistic_regression", "params": {"C": 0.5}}},
        content_type="application/json")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["steps"][0]["key"] == "train" and body["job"]["id"]
    change = _wait_finished(body["id"])
    assert change.status == "succeeded", change.reason
    steps = {s.key: s for s in change.steps.select_related("job")}
    assert list(steps) == ["train", "gates", "approve_staging", "deploy_staging", "smoke_test", "request_production"]
    assert all(s.status == "succeeded" and s.job_id for s in steps.values()), [(s.key, s.status, s.detail)
                                                                               for s in steps.values()]
    run = Run.objects.get(pk=change.run_id)
    assert run.source == "ci" and run.created_by == engineer
    version = ModelVersion.objects.get(pk=change.model_version_id)
    assert version.stage == "staging"
    staging = change.staging_promotion
    assert staging.status == "approved" and staging.decided_by.username == "mlops-policy"
    assert staging.requested_by == engineer and "Approved by policy" in staging.decision_comment
    assert change.auto_approved and change.deployment.environment.name == "staging"
    assert change.smoke["passed"] and change.smoke["answered"] == change.smoke["rows"] > 0
    production = change.production_promotion
    assert production.status == "pending" and production.target_stage == "production"

    # the page shows the steps and their jobs
    page = client_for(engineer).get(change.get_absolute_url())
    assert page.status_code == 200 and b"Smoke test" in page.content

    wait_until(lambda: production.__class__.objects.get(pk=production.pk).gates_done, timeout=60,
               message="the production gates")
    production.refresh_from_db()
    # the automation opened it, but on behalf of the change's author: they cannot approve it,
    # even when they also hold the analyst role (four-eyes rule)
    assert production.requested_by.username == "mlops-system" and production.on_behalf_of == engineer
    engineer.groups.add(Group.objects.get(name=ANALYST))
    engineer = type(engineer).objects.get(pk=engineer.pk)  # drop the cached permissions
    assert pending_count_for(engineer) == 0 and pending_count_for(analyst) == 1
    with pytest.raises(PermissionDenied, match="four-eyes"):
        promotion_approve(user=engineer, promotion=production, comment="my own change is fine")
    page = client_for(engineer).get(production.get_absolute_url())
    assert b"opened this request after your own action" in page.content
    assert b'name="comment"' not in page.content
    promotion_approve(user=analyst, promotion=production, comment="CI change looks good",
                      override_reason="accepted in tests" if production.failed_gates else "")
    for key in ("ci_pipeline", "auto_staging", "smoke_test"):
        assert criterion(ci_model, key)["met"], key


def test_pipeline_change_waits_for_an_analyst_when_auto_approval_is_off(ci_worker, ci_model, engineer, analyst):
    from apps.maturity.services import pipeline_change_create

    assert not PipelinePolicy.objects.filter(model=ci_model, auto_approve_staging=True).exists()
    change = pipeline_change_create(user=engineer, model=ci_model, source_commit="feedbeef",
                                    spec={"algorithm": "logistic_regression"})
    change = _wait_finished(change.pk)
    assert change.status == "waiting" and "an analyst must approve" in change.reason, change.reason
    promotion_approve(user=analyst, promotion=change.staging_promotion, comment="by hand")
    change = _wait_finished_or_done(change.pk)
    assert change.status == "succeeded", change.reason
    assert not change.auto_approved and change.smoke["passed"]


def _wait_finished_or_done(change_id):
    return wait_until(lambda: PipelineChange.objects.filter(pk=change_id, status__in=("succeeded", "failed")).first(),
                      timeout=180, message="the pipeline change to finish")


def test_failed_training_fails_the_change_with_its_reason(ci_worker, ci_model, engineer, client_for):
    from apps.maturity.services import pipeline_change_create

    change = pipeline_change_create(user=engineer, model=ci_model, source_commit="cafe",
                                    spec={"algorithm": "logistic_regression"})
    from django.core.files.storage import default_storage

    from apps.datasets.models import DatasetVersion

    # the training data disappears from storage: the run's job fails and the change says so
    dv = DatasetVersion.objects.get(pk=change.spec["dataset_version"])
    default_storage.delete(dv.file.name)
    wait_until(lambda: Run.objects.get(pk=change.run_id).status in ("failed",), timeout=120, message="a failed run")
    page = client_for(engineer).get(change.get_absolute_url())
    assert page.status_code == 200
    change.refresh_from_db()
    assert change.status == "failed" and "Train" in change.reason


@pytest.mark.django_db
def test_pipeline_change_api_refuses_viewers_and_bad_specs(ci_model, viewer, engineer, client_for):
    url = f"/api/v1/models/{ci_model.pk}/pipeline-changes/"
    body = {"source_commit": "x1", "spec": {"algorithm": "logistic_regression"}}
    assert client_for(viewer).post(url, body, content_type="application/json").status_code == 403
    bad = client_for(engineer).post(url, {"source_commit": "x1", "spec": {"algorithm": "no_such_algorithm"}},
                                    content_type="application/json")
    assert bad.status_code == 400
    assert not PipelineChange.objects.exists()
