"""Every page each role can reach opens cleanly: no console error, no failed request, no 4xx/5xx.

Each role logs in and follows every same-site link it is shown, breadth first, from the
Overview: a link a role is shown must work for that role. Pages of one kind (``/models/versions/N/``)
are opened twice at most, so the walk covers every kind of page in a world that has them all:
datasets, runs, versions, promotion requests, deployments, drift reports, alerts, retrainings,
maturity snapshots and jobs. Files (downloads, CSV, JSON) are fetched and only their status judged.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import pytest

from apps.maturity.services import snapshot_all
from apps.monitoring.models import MonitorPolicy
from apps.monitoring.services import drift_check
from tests.conftest import login
from tests.monitoring.conftest import deployed, send  # noqa: F401 - deployed is a fixture

pytestmark = pytest.mark.browser

PER_KIND = 2
MAX_PAGES = 90
# leaving the site, ending the session, or the admin's own pages (Django's, judged by the admin role only)
SKIPPED = re.compile(r"^/(accounts/logout|static/|media/|api/schema)")
ADMIN_ONLY = re.compile(r"^/admin/")
# Django admin's destructive or bulk pages are not pages to open blindly
ADMIN_SKIPPED = re.compile(r"/(delete|history)/$|/admin/logout/|/admin/password_change/")


@pytest.fixture
def world(deployed, analyst):  # noqa: F811 - the fixture imported above
    policy = MonitorPolicy.objects.get(model=deployed.model, environment=deployed.environment)
    MonitorPolicy.objects.filter(pk=policy.pk).update(min_rows=50, drift_share=0.3, retrain_policy="off")
    policy.refresh_from_db()
    for i, shift in enumerate([0.0, 3.0]):
        window = send(deployed, hours_ago=30 - 10 * i, rows=300, seed=50 + i, shift=shift, analyst=analyst)
        drift_check(policy=policy, window_start=window[0], window_end=window[1])
    snapshot_all(trigger="manual")
    return deployed


def _kind(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(sorted(k.split("=")[0] for k in parts.query.split("&") if k))
    return re.sub(r"/\d+(?=/|$)", "/N", parts.path) + ("?" + query if query else "")


def _walk(page, base: str, *, admin: bool) -> tuple[list[str], list[str]]:
    """Visit what the role is shown; return (visited paths, problems)."""
    problems: list[str] = []
    current = {"url": "/"}
    page.on("console", lambda m: problems.append(f"{current['url']}: console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"{current['url']}: script error: {exc}"))
    page.on("requestfailed", lambda r: problems.append(f"{current['url']}: request failed: {r.url} {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)
    page.on("response", lambda r: problems.append(f"{current['url']}: {r.status} for {r.url}")
            if r.status >= 400 else None)
    seen_kinds: dict[str, int] = {}
    queue, queued, visited = deque(["/"]), {"/"}, []
    while queue and len(visited) < MAX_PAGES:
        path = queue.popleft()
        current["url"] = path
        fetched = page.request.get(base + path, max_redirects=5)
        if fetched.status >= 400:
            problems.append(f"{path}: {fetched.status}")
            continue
        visited.append(path)
        if "text/html" not in fetched.headers.get("content-type", ""):
            continue  # a file: its status is what matters
        page.goto(path)
        page.wait_for_load_state("networkidle")
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urlsplit(urljoin(base + path, href))
            if target.netloc != urlsplit(base).netloc or not target.path.startswith("/"):
                continue
            link = target.path + (f"?{target.query}" if target.query else "")
            if link in queued or SKIPPED.match(link) or (ADMIN_ONLY.match(link) and not admin):
                continue
            if admin and ADMIN_SKIPPED.search(link):
                continue
            kind = _kind(link)
            if seen_kinds.get(kind, 0) >= PER_KIND:
                continue
            seen_kinds[kind] = seen_kinds.get(kind, 0) + 1
            queued.add(link)
            queue.append(link)
    return visited, problems


@pytest.mark.parametrize("role", ["viewer", "engineer", "analyst", "admin"])
def test_every_page_a_role_is_shown_opens_without_an_error(page, live_server, world, role, request):
    request.getfixturevalue("admin_user" if role == "admin" else role)
    login(page, role)
    visited, problems = _walk(page, live_server.url, admin=role == "admin")
    kinds = {_kind(v).split("?")[0] for v in visited}
    for expected in ("/datasets/", "/experiments/", "/models/", "/deployments/", "/monitoring/", "/maturity/",
                     "/monitoring/N/", "/deployments/N/", "/models/versions/N/"):
        assert expected in kinds, f"the walk never reached {expected}: {sorted(kinds)}"
    assert not problems, "\n".join(problems[:30])
