"""Journey: an engineer uploads a CSV through the form, watches profiling, sees the charts."""

import pytest

from apps.datasets.models import Dataset
from tests.conftest import login
from tests.factories import csv_file, mixed_frame

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_an_engineer_uploads_a_csv_and_sees_its_profile_charts(page, worker, engineer):
    dataset = Dataset.objects.create(name="journey-data", owner=engineer)
    path = csv_file(mixed_frame(1500, seed=7))
    login(page, "engineer")
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files("input[name=file]", path)
    page.fill("input[name=note]", "first upload")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/datasets/versions/*/")
    # the profiling job's progress shows until the page reloads with the charts
    page.wait_for_selector("[data-testid=schema-table]")
    page.wait_for_selector("#col-chart-0 svg.main-svg", timeout=60_000)
    assert page.locator("[data-testid=validation-results]").count() == 1
    assert page.locator("svg.main-svg").count() >= 4
    assert "1500 rows" in page.locator("dl.facts").inner_text()


def test_a_bad_file_shows_the_reason_in_the_form(page, engineer, tmp_path):
    dataset = Dataset.objects.create(name="bad-data", owner=engineer)
    bad = tmp_path / "dupes.csv"  # judged from the header in the request; a ragged row is the worker's to find
    bad.write_text("a,b,a\n1,2,3\n")
    login(page, "engineer")
    page.goto(f"/datasets/{dataset.pk}/")
    page.set_input_files("input[name=file]", str(bad))
    page.get_by_role("button", name="Upload").click()
    error = page.get_by_test_id("upload-error")
    error.wait_for()
    assert "duplicate column names: 'a'" in error.inner_text()
