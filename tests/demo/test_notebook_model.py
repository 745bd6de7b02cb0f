"""The demo's model from a notebook: logged through the services the /mlflow/ routes call, then approved to
staging by another person, deployed, sent traffic and drift-checked by the real worker, like the others."""

from __future__ import annotations

from apps.datasets.models import DatasetVersion
from apps.demo import datasets, notebook
from apps.deployments.models import Deployment, PredictionLog
from apps.deployments.services import environments_ensure
from apps.monitoring.models import Alert, DriftReport, Retraining
from apps.registry.models import ModelVersion
from tests.conftest import wait_until


def test_the_demo_holds_a_model_logged_with_the_mlflow_protocol_and_watched_in_staging(
        worker, engineer, analyst, client_for):
    worker.stop()  # a fresh process: content type ids change between transactional tests
    worker.start()
    environments_ensure()
    datasets.seed()
    wait_until(lambda: DatasetVersion.objects.filter(dataset__name="customer-churn", status="ready").count() >= 2,
               timeout=180, message="the churn versions to be profiled")

    summary = notebook.seed()
    version = ModelVersion.objects.select_related("run", "model").get(model__name=notebook.MODEL_NAME)
    assert "in staging" in summary, summary
    assert version.is_external and version.deployable and version.serialization_format == "skops"
    assert version.stage == "staging" and version.created_by == engineer
    run = version.run
    assert run.source == "mlflow" and run.git_commit == notebook.GIT_COMMIT
    assert [p.step for p in run.metric_points.filter(key="cv_f1_macro").order_by("step")] == [0, 1, 2]
    churn = DatasetVersion.objects.filter(dataset__name="customer-churn").order_by("number")
    inputs = {i.context: i.dataset_version for i in run.inputs.all()}
    assert inputs == {"training": churn[0], "evaluation": churn[1]}
    promotion = version.promotions.get(target_stage="staging")
    assert promotion.status == "approved" and promotion.decided_by == analyst
    assert promotion.evaluation_dataset_version == churn[1] and promotion.evaluation_target == "churned"

    deployment = Deployment.objects.get(model_version=version, environment__name="staging", status="active")
    assert PredictionLog.objects.filter(deployment=deployment).count() == notebook.TRAFFIC_DAYS * 24 * \
        notebook.ROWS_PER_HOUR
    reports = list(DriftReport.objects.filter(policy__model=version.model).order_by("window_start"))
    assert len(reports) == notebook.TRAFFIC_DAYS and all(r.reference_dataset_version == churn[0] for r in reports)
    assert reports[-1].dataset_drift is True and not reports[0].dataset_drift
    assert Alert.objects.filter(policy__model=version.model, kind="drift").exists()
    assert not Retraining.objects.exists()  # its code is not ours: the owner is told instead

    page = client_for(analyst).get(version.get_absolute_url()).content.decode()
    assert "deployable" in page and notebook.GIT_COMMIT[:12] in page
    assert "already deployed and watched" in notebook.seed()
    assert ModelVersion.objects.filter(model__name=notebook.MODEL_NAME).count() == 1
