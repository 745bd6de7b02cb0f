"""Journey: a viewer opens a run logged from a notebook and the model version it became."""

from __future__ import annotations

import pytest

from apps.experiments.models import Run
from apps.registry.models import ModelVersion
from tests.conftest import login, make_user
from tests.tracking.conftest import forest_pipeline

pytestmark = [pytest.mark.browser]


def test_a_viewer_sees_the_mlflow_run_with_its_chart_and_files_and_the_deployable_version(page, mlflow_client,
                                                                                          churn_frame):
    mlflow = mlflow_client
    make_user("reader", group="viewer")
    mlflow.set_experiment("journey-notebook")
    with mlflow.start_run(run_name="journey-rf") as active:
        for step in range(6):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_param("n_estimators", 20)
        mlflow.sklearn.log_model(forest_pipeline(churn_frame), name="model", serialization_format="skops",
                                 skops_trusted_types=["sklearn.tree._tree.Tree"],
                                 input_example=churn_frame[["tenure", "charges", "contract"]].head(3),
                                 registered_model_name="journey-model")
    run = Run.objects.get(uuid=active.info.run_id)
    version = ModelVersion.objects.get(model__name="journey-model", version=1)

    login(page, "reader")
    page.goto("/experiments/")
    page.click("text=journey-notebook")
    page.click("text=journey-rf")
    page.wait_for_url(f"**/experiments/runs/{run.pk}/")
    page.wait_for_selector("#metric-chart-0 svg.main-svg")
    assert "loss by step" in page.inner_text("#metric-chart-0")
    tree = page.get_by_test_id("artifact-tree").last
    assert "MLmodel" in tree.inner_text() and "model.skops" in tree.inner_text()
    with page.expect_download() as download:
        page.click("[data-testid=artifact-tree] a:text('MLmodel')")
    assert "mlflow.sklearn" in open(download.value.path()).read()

    page.click(f"a[href='{version.get_absolute_url()}']")
    page.wait_for_selector("[data-testid=external-version]")
    assert "deployable" in page.inner_text("[data-testid=deployability]")
    assert "not deployable" not in page.inner_text("[data-testid=deployability]")
    sha = page.locator("[data-testid=external-sha]")
    assert sha.locator("code").get_attribute("title") == version.artifact_sha256  # whole value on hover
    assert sha.locator("button.copy").get_attribute("data-copy") == version.artifact_sha256
