"""Journey: a viewer pages through the jobs list by its pager's links, older and back to the newest."""

import pytest

from apps.core import views as core_views
from tests.conftest import login
from tests.factories import JobFactory

pytestmark = pytest.mark.browser


def shown(page) -> list[str]:
    return page.locator("table a[href^='/jobs/']").evaluate_all("links => links.map(a => a.getAttribute('href'))")


def follow(page, name: str) -> None:
    with page.expect_navigation():
        page.get_by_test_id("pager").get_by_role("link", name=name).click()


def test_a_viewer_walks_the_jobs_list_older_and_back_to_the_newest(page, viewer, monkeypatch):
    monkeypatch.setattr(core_views, "JOBS_PER_PAGE", 2)
    made = [f"/jobs/{JobFactory().pk}/" for _ in range(5)][::-1]
    login(page, "viewer")
    page.goto("/jobs/")
    pager = page.get_by_test_id("pager")
    assert shown(page) == made[:2] and pager.get_by_role("link").all_inner_texts() == ["Older →"]
    follow(page, "Older →")
    assert shown(page) == made[2:4]
    follow(page, "Older →")
    assert shown(page) == made[4:] and pager.get_by_role("link").all_inner_texts() == ["« Newest", "← Newer"]
    follow(page, "← Newer")
    assert "after=" in page.url and shown(page) == made[2:4]
    follow(page, "« Newest")
    assert shown(page) == made[:2]
