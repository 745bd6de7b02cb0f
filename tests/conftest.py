"""Shared fixtures: role users, per-test media, the serving cache, environments, an experiment,
a real Celery worker on Redis, and the system Chromium.

The suite runs against the services ``tests/run.sh`` starts. With
MLOPS_REQUIRE_SERVICES=1 (set by ``make test``) a missing service is a failure, never
a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import (  # noqa: F401 - make_user is imported from here by test modules
    DatasetVersionFactory,
    ExperimentFactory,
    UserFactory,
    make_user,
    mixed_frame,
)
from tests.support.worker import WorkerProcess

ROOT = Path(__file__).resolve().parent.parent
_engine_seen: dict[str, str] = {}


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return [
        f"database engine: {db['ENGINE']} (name {db.get('NAME')})",
        f"celery broker: {settings.CELERY_BROKER_URL.split('@')[-1]}",
    ]


def pytest_terminal_summary(terminalreporter):
    if _engine_seen:
        terminalreporter.write_line(f"database engine that ran: {_engine_seen['engine']}")


@pytest.fixture(scope="session", autouse=True)
def _fast_test_settings():
    # Hashing test passwords with PBKDF2 would dominate the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    # Tests don't run collectstatic; serve static files through the finders instead.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Imports may already have built the storages from the old setting: reset them as an override would.
    from django.test.signals import setting_changed

    setting_changed.send(sender=type(settings), setting="STORAGES", value=settings.STORAGES, enter=True)


def _flush_that_survives_the_worker():
    """Retry the between-tests flush when it loses a lock race with the real worker.

    The worker and its beat (reaper, monitoring scheduler) keep their own connections to the
    test database between tests. The flush is one TRUNCATE over every table, taking locks
    table by table; when a worker transaction holds one of them and waits for another,
    PostgreSQL resolves the deadlock by aborting one side, sometimes the flush. Left alone,
    that test's rows stay behind and the next test fails on a duplicate user. The worker is
    real and keeps running, so the flush simply tries again.
    """
    from django.core.management.base import CommandError
    from django.db.utils import OperationalError
    from django.test.testcases import TransactionTestCase

    original = TransactionTestCase._fixture_teardown
    attempts = 5

    def fixture_teardown(self):
        for attempt in range(1, attempts + 1):
            try:
                return original(self)
            except CommandError as exc:
                if attempt == attempts or not isinstance(exc.__cause__, OperationalError):
                    raise
                sys.stderr.write(f"flush attempt {attempt} lost a lock race ({exc.__cause__}); retrying\n")
                time.sleep(0.3 * attempt)
                if attempt >= 2:
                    _end_other_sessions()

    TransactionTestCase._fixture_teardown = fixture_teardown


def _end_other_sessions():
    """Last resort for the flush: end the other sessions that are inside a transaction.

    Those are the worker's (it reconnects per task); idle sessions, such as the live
    server's, are left alone.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'"
        )


_flush_that_survives_the_worker()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from django.db import connection

    with django_db_blocker.unblock():
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT version()")
                _engine_seen["engine"] = cursor.fetchone()[0]
            else:
                _engine_seen["engine"] = connection.vendor
    if os.environ.get("MLOPS_REQUIRE_SERVICES") and connection.vendor != "postgresql":
        pytest.fail(f"make test must run on PostgreSQL, but the database is {connection.vendor}")
    yield


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Role groups exist in every test that touches the database (a flush removes them)."""
    names = request.fixturenames
    if "transactional_db" in names or "page" in names:
        request.getfixturevalue("transactional_db")
    elif "db" in names:
        request.getfixturevalue("db")
    else:
        return
    from apps.accounts.services import role_groups_ensure

    role_groups_ensure()


@pytest.fixture
def viewer(db):
    return UserFactory(username="viewer", viewer=True)


@pytest.fixture
def engineer(db):
    return UserFactory(username="engineer", engineer=True)


@pytest.fixture
def analyst(db):
    return UserFactory(username="analyst", analyst=True)


@pytest.fixture
def analyst2(db):
    return UserFactory(username="analyst2", analyst=True)


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", admin=True)


@pytest.fixture
def outsider(db):
    return UserFactory(username="outsider")  # no role at all


@pytest.fixture(autouse=True)
def media(request, settings, tmp_path):
    """Stored files (datasets, artifacts, batches) go to a folder of this test's own.

    Transactional tests keep the default MEDIA_ROOT: they share files with the session's
    worker process, which reads that one.
    """
    if "transactional_db" not in request.fixturenames:
        settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def fresh_runtime():
    """No predictor loaded by an earlier test answers in this one (ids repeat across tests)."""
    from apps.deployments import runtime

    runtime.forget()
    yield
    runtime.forget()


@pytest.fixture
def environments(db):
    from apps.deployments.models import Environment
    from apps.deployments.services import environments_ensure

    environments_ensure()
    return {e.name: e for e in Environment.objects.all()}


@pytest.fixture
def experiment(engineer):
    """An engineer's classification experiment on 400 profiled rows (x1, x2, color -> target).

    x2 has gaps, so a model trained on it accepts a null x2.
    """
    frame = mixed_frame(400, seed=31)
    frame.loc[::17, "x2"] = None
    version = DatasetVersionFactory(dataset__name="shop-data", dataset__owner=engineer, frame=frame,
                                    created_by=engineer)
    return ExperimentFactory(name="buyers", dataset=version.dataset, created_by=engineer)


@pytest.fixture
def client_for(client):
    from django.test import Client

    def _client(user):
        c = Client()
        if user is not None:
            c.force_login(user)
        return c

    return _client


# --- the real Celery worker ------------------------------------------------------------------


@pytest.fixture(scope="session")
def worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """A real Celery worker (prefork) on the test Redis and the test database."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        message = f"worker tests need Redis (CELERY_BROKER_URL is {settings.CELERY_BROKER_URL})"
        if os.environ.get("MLOPS_REQUIRE_SERVICES"):
            pytest.fail(message)
        pytest.skip(message)
    worker = WorkerProcess(log_dir=tmp_path_factory.mktemp("worker"), beat=True)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def worker(worker_process, transactional_db):
    if not worker_process.alive():
        worker_process.start()
    worker_process.purge()
    return worker_process


# --- the system Chromium through Playwright --------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail(f"browser tests need Chromium at {path}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, transactional_db, request):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    try:
        page.screenshot(path=str(artifacts / f"{request.node.name}.png"), full_page=True)
    except Exception:  # a screenshot is a convenience, never the verdict
        pass
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def login(page, username: str, password: str = "pw-for-tests-1") -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=whoami]")


def run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def wait_until(predicate, *, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")
