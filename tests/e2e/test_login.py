"""Journey: a viewer logs in, sees the navigation and their role, and logs out."""

import pytest

from apps.core.models import Job
from tests.conftest import login

pytestmark = pytest.mark.browser


def test_a_viewer_logs_in_sees_the_navigation_and_logs_out(page, viewer):
    page.goto("/")
    assert "/accounts/login/" in page.url
    login(page, "viewer")
    nav = page.locator("nav.mainnav a")
    assert nav.all_inner_texts() == [
        "Overview", "Datasets", "Experiments", "Models", "Deployments", "Monitoring", "Maturity",
    ]
    assert page.get_by_test_id("role").inner_text() == "Viewer"
    assert page.get_by_test_id("whoami").inner_text().startswith("viewer")
    # htmx arrived from our own static files
    page.wait_for_function("typeof window.htmx === 'object'")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    page.goto("/jobs/")
    assert "/accounts/login/" in page.url


def test_a_wrong_password_is_refused_with_a_message(page, viewer):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "viewer")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().startswith("Your username and password didn't match")


def test_a_job_page_polls_its_progress_until_the_job_ends(page, viewer):
    job = Job.objects.create(kind="core.selfcheck", status="running", progress=30, message="Step 3")
    login(page, "viewer")
    page.goto(f"/jobs/{job.pk}/")
    assert page.get_by_test_id("job-percent").inner_text() == "30%"
    Job.objects.filter(pk=job.pk).update(status="succeeded", progress=100, message="Done")
    page.wait_for_selector("[data-testid=job-progress][data-status=succeeded]", timeout=10_000)
    assert page.get_by_test_id("job-percent").inner_text() == "100%"
    # polling stopped: the fragment no longer carries hx-trigger
    assert page.locator("#job-progress").get_attribute("hx-trigger") is None


def submit(page, username: str, password: str):
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def test_too_many_wrong_passwords_lock_the_login_and_say_for_how_long(page, viewer, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    submit(page, "viewer", "wrong")
    submit(page, "viewer", "wrong again")
    assert page.get_by_test_id("locked-out").inner_text() == (
        "Too many failed sign-ins for this account from your address; try again in 15 minutes."
    )
    submit(page, "viewer", "pw-for-tests-1")
    assert page.get_by_test_id("locked-out").is_visible()
    page.goto("/jobs/")
    assert "/accounts/login/" in page.url
