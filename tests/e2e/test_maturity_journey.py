"""Journey: a viewer opens the Overview, sees the portfolio and the maturity charts drawn, and opens a
model's checklist with its evidence and hints."""

import pytest

from apps.maturity.services import snapshot_all
from tests.conftest import login
from tests.maturity.conftest import fresh_runtime, served  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_a_viewer_reads_the_overview_and_a_checklist(page, viewer, served):  # noqa: F811
    snapshot_all(trigger="manual")
    login(page, "viewer")
    page.goto("/")
    row = page.locator("[data-testid=portfolio] tr[data-model=mature]")
    assert row.get_attribute("data-level") == "0"
    assert page.locator("[data-testid=in-production]").inner_text().strip() == "1"
    for chart in ("levels-chart", "steps-chart", "criteria-chart"):
        page.wait_for_selector(f"#{chart} svg.main-svg")
    row.locator("a", has_text="mature").click()
    page.wait_for_selector("[data-testid=checklist]")
    assert page.locator("tr[data-criterion=lineage]").get_attribute("data-met") == "true"
    assert page.locator("tr[data-criterion=drift_checks]").get_attribute("data-met") == "false"
    assert page.locator("tr[data-criterion=drift_checks] [data-testid=hint-link]").count() == 1
    page.wait_for_selector("#history-chart svg.main-svg")
    # "Recompute now" is open to a viewer and comes back to the page
    page.click("button:has-text('Recompute now')")
    page.wait_for_selector("[data-testid=checklist]")
