"""Journey: a viewer opens the monitoring page and sees the drift charts drawn."""

import pytest

from apps.monitoring.services import drift_check
from tests.conftest import login
from tests.monitoring.conftest import deployed, send  # noqa: F401 - deployed is a fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def fresh_runtime():
    from apps.deployments import runtime

    runtime.forget()


def test_a_viewer_sees_drift_emerge_on_the_monitoring_page(page, viewer, analyst, deployed, fresh_runtime):  # noqa: F811
    from apps.monitoring.models import MonitorPolicy

    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    policy.min_rows = 50
    policy.drift_share = 0.3
    policy.retrain_policy = "off"
    policy.save()
    for i, shift in enumerate([0.0, 0.0, 3.0, 3.0]):
        window = send(deployed, hours_ago=50 - 10 * i, seed=20 + i, shift=shift, analyst=analyst)
        drift_check(policy=policy, window_start=window[0], window_end=window[1])
    login(page, "viewer")
    page.goto("/monitoring/")
    tile = page.locator("[data-testid=health-tiles] a.tile").first
    assert tile.get_attribute("data-health") == "drifting"
    tile.click()
    for chart in ("share-chart", "heatmap-chart", "performance-chart", "prediction-chart"):
        page.wait_for_selector(f"#{chart} svg.main-svg")
    page.locator("#heatmap-chart .heatmaplayer path, #heatmap-chart g.hm image").first.wait_for(state="attached")
    box = page.locator("#heatmap-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("[data-testid=feature-overlay] svg.main-svg")
    assert "reference against the window" in page.inner_text("[data-testid=cell-detail]")
    assert "open" in page.inner_text("[data-testid=alerts]")
