"""Long lists are read a page at a time by key: the jobs list, the audit log and every API list."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import views as core_views
from apps.core.models import JobStatus
from tests.factories import AuditEventFactory, ExperimentFactory, JobFactory

pytestmark = pytest.mark.django_db


def links(body: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', body)
    return unescape(found.group(1)) if found else None


def job_ids(body: str) -> list[int]:
    return [int(n) for n in re.findall(r'<a href="/jobs/(\d+)/">', body)]


def test_the_jobs_list_walks_every_job_once_newest_first_and_back(viewer, client_for, monkeypatch):
    monkeypatch.setattr(core_views, "JOBS_PER_PAGE", 2)
    made = [JobFactory().pk for _ in range(5)]
    client = client_for(viewer)
    seen, url, pages = [], "/jobs/", []
    while url:
        body = client.get(url if url.startswith("/") else f"/jobs/{url}").content.decode()
        pages.append(job_ids(body))
        seen += pages[-1]
        url = links(body, "next")
    assert seen == made[::-1]
    assert [len(p) for p in pages] == [2, 2, 1]
    back = client.get(f"/jobs/?after={pages[-1][0]}").content.decode()
    assert job_ids(back) == pages[1]


def test_the_jobs_list_keeps_its_status_filter_from_page_to_page(viewer, client_for, monkeypatch):
    monkeypatch.setattr(core_views, "JOBS_PER_PAGE", 1)
    failed = [JobFactory(status=JobStatus.FAILED).pk for _ in range(2)]
    JobFactory(status=JobStatus.SUCCEEDED)
    client = client_for(viewer)
    first = client.get("/jobs/?status=failed").content.decode()
    older = links(first, "next")
    assert "status=failed" in older
    assert job_ids(first) + job_ids(client.get(f"/jobs/{older}").content.decode()) == failed[::-1]


@pytest.mark.parametrize("cursor, field", [
    ("before=abc", "before"), ("after=-3", "after"), (f"before={'9' * 40}", "before"),
    (f"after={'9' * 5000}", "after"), ("before=\u0661\u0662", "before"), ("before=1_0", "before"),
    ("before=5&after=2", "after"),
])
def test_a_malformed_cursor_is_refused_with_a_page_naming_it(viewer, client_for, cursor, field):
    JobFactory()
    response = client_for(viewer).get(f"/jobs/?{cursor}")
    assert response.status_code == 400
    body = unescape(response.content.decode())
    assert f"“{field}” must be a row id" in body or "not both" in body
    assert 'role="alert"' in body


def test_the_audit_log_never_counts_its_events(admin_user, client_for, monkeypatch):
    """A COUNT(*) of a million events costs more than the page; the pager links by key instead."""
    monkeypatch.setattr(core_views, "AUDIT_EVENTS_PER_PAGE", 2)
    for i in range(3):
        AuditEventFactory(action="guard.kept", note=f"kept {i}.")
    client = client_for(admin_user)
    client.get("/audit/")
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/audit/?action=guard.").content.decode()
    assert not [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper() and "audit" in q["sql"]]
    assert "kept 2." in body and "kept 1." in body and "kept 0." not in body
    older = client.get(f"/audit/{links(body, 'next')}").content.decode()
    assert "kept 0." in older and "kept 1." not in older
    assert links(older, "next") is None and links(older, "prev") is not None


def test_an_api_list_walks_its_link_headers_through_every_row_once(viewer, client_for, experiment):
    made = [experiment.pk] + [ExperimentFactory(dataset=experiment.dataset).pk for _ in range(4)]
    client = client_for(viewer)
    seen, url, sizes = [], "/api/v1/experiments/?limit=2", []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        sizes.append(len(response.json()))
        seen += [e["id"] for e in response.json()]
        header = response.get("Link")
        url = re.match(r'<http://testserver([^>]+)>; rel="next"', header).group(1) if header else None
    assert seen == made[::-1]
    assert sizes == [2, 2, 1]


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=ten", "limit"),
    ("before=-1", "before"), ("before=1e3", "before"), (f"before={'9' * 30}", "before"),
    (f"before={'9' * 5000}", "before"), ("before=\u0661", "before"), ("before=\u00b2", "before"),
    ("limit=\u00b2", "limit"),
])
def test_an_api_list_answers_a_bad_page_parameter_with_a_400_naming_it(viewer, client_for, query, field):
    response = client_for(viewer).get(f"/api/v1/promotions/?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_datasets_endpoint_pages_in_the_order_the_client_chose(viewer, client_for, engineer, experiment):
    from tests.factories import DatasetVersionFactory

    for name in ("b-set", "a-set", "c-set"):
        DatasetVersionFactory(dataset__name=name, dataset__owner=engineer, created_by=engineer, rows=60)
    client = client_for(viewer)
    first = client.get("/api/v1/datasets/?sort=name&limit=2")
    second = client.get(re.match(r"<http://testserver([^>]+)>", first["Link"]).group(1))
    assert [d["name"] for d in first.json() + second.json()] == ["a-set", "b-set", "c-set", "shop-data"]
    assert "Link" not in second
    for offset in ("-2", "100001", "\u0661", "9" * 5000):
        refused = client.get(f"/api/v1/datasets/?offset={offset}")
        assert refused.status_code == 400 and refused.json()["error"]["fields"].keys() == {"offset"}


@pytest.mark.parametrize("query", ["before=0", "before=1", "after=9223372036854775807"])
def test_the_pager_never_links_outside_the_cursor_range(viewer, client_for, query):
    JobFactory.create_batch(2)
    body = client_for(viewer).get(f"/jobs/?{query}").content.decode()
    for rel in ("prev", "next"):
        link = links(body, rel)
        if link:
            assert client_for(viewer).get(f"/jobs/{link}").status_code == 200, link
