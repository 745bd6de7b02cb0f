"""Who may cancel a job is one rule on the Job, and the cancel service applies it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied

from apps.core.jobs import job_task
from apps.core.models import AuditEvent, Job
from apps.core.services import job_cancel
from apps.core.tasks import SELFCHECK
from tests.conftest import make_user

APPS = Path(__file__).resolve().parents[2] / "apps"


@job_task("tests.cancellable_by_engineers", cancel_capability="launch_training")
def cancellable_by_engineers(ctx):
    """A kind whose jobs anyone who may start them may also cancel."""


@pytest.fixture
def job(engineer):
    return Job.objects.create(kind=SELFCHECK, created_by=engineer)


def test_the_starter_and_admins_may_cancel_a_job_and_nobody_else(job, engineer, admin_user, viewer, analyst):
    assert job.can_cancel(engineer) and job.can_cancel(admin_user)
    assert not job.can_cancel(viewer) and not job.can_cancel(analyst) and not job.can_cancel(AnonymousUser())


def test_a_starter_whose_account_was_deactivated_may_no_longer_cancel(job, engineer):
    engineer.is_active = False
    assert not job.can_cancel(engineer)


def test_a_job_kind_may_let_everyone_who_can_start_it_cancel_it(engineer, analyst):
    colleague = make_user("colleague", group="ml_engineer")
    job = Job.objects.create(kind="tests.cancellable_by_engineers", created_by=engineer)
    assert job.can_cancel(colleague)
    assert not job.can_cancel(analyst)


def test_the_cancel_service_refuses_someone_who_may_not_cancel(job, viewer):
    with pytest.raises(PermissionDenied, match="Only the person who started"):
        job_cancel(job=job, user=viewer)
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == ("queued", False)
    assert not AuditEvent.objects.filter(action="job.cancel").exists()


def test_the_cancel_service_cancels_a_queued_job_for_its_starter(job, engineer):
    job_cancel(job=job, user=engineer)
    job.refresh_from_db()
    assert job.status == "cancelled"
    assert AuditEvent.objects.filter(action="job.cancel", actor=engineer).exists()


def test_the_cancel_page_asks_the_service(job, viewer, client_for):
    response = client_for(viewer).post(f"/jobs/{job.pk}/cancel/")
    assert response.status_code == 403
    assert b"Only the person who started" in response.content


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_app_imports_the_project_package():
    offenders = [
        str(path.relative_to(APPS))
        for path in APPS.rglob("*.py")
        if any(name == "mlops_web" or name.startswith("mlops_web.") for name in imported_modules(path))
    ]
    assert offenders == [], "apps sit below mlops_web; send tasks through celery.current_app"
