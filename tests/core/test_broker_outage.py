"""A job whose message could not reach the broker is sent again, and its request still answers.

The site, the worker and the broker are real processes: gunicorn and a Celery worker with
its beat on a Redis server of this test's own, which the test stops and starts again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.models import Job
from apps.core.services import jobs_reap_stale
from apps.core.tasks import SELFCHECK
from tests.conftest import wait_until
from tests.support.services import RedisServer, WebServer
from tests.support.worker import WorkerProcess


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_worker(redis_server, transactional_db, tmp_path):
    worker = WorkerProcess(log_dir=tmp_path, beat=True, env={"CELERY_BROKER_URL": redis_server.url})
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def web(redis_server, transactional_db, tmp_path):
    server = WebServer(tmp_path, env={"CELERY_BROKER_URL": redis_server.url})
    server.start()
    yield server
    server.stop()


def finished(job: Job):
    job.refresh_from_db()
    return job if job.is_finished else None


@pytest.mark.worker
def test_a_job_started_while_redis_is_down_answers_at_once_and_runs_once_redis_is_back(
    redis_server, own_worker, web, admin_user
):
    session = web.session_for(admin_user)
    redis_server.stop()
    response = session.post(web.url + "/jobs/selfcheck/", allow_redirects=False, timeout=60)
    assert response.status_code == 302, web.log()
    job = Job.objects.get(kind=SELFCHECK)
    assert response.headers["Location"] == job.get_absolute_url()
    assert (job.status, job.sent_at) == ("queued", None)
    assert job.message.startswith("Waiting for the broker")
    shown = session.get(f"{web.url}/api/v1/jobs/{job.pk}/", timeout=30).json()
    assert (shown["status"], shown["message"]) == ("queued", job.message)
    redis_server.start()
    wait_until(lambda: finished(job), timeout=120, message="the job to run once Redis is back")
    assert job.status == "succeeded", job.error
    assert job.attempt == 1


def test_the_reaper_sends_a_job_whose_message_never_left_once_its_grace_period_is_over(db, settings):
    settings.JOB_UNSENT_GRACE_SECONDS = 30
    now = timezone.now()
    unsent = Job.objects.create(kind=SELFCHECK, created_at=now - timedelta(seconds=31))
    just_created = Job.objects.create(kind=SELFCHECK, created_at=now - timedelta(seconds=5))
    report = jobs_reap_stale(now=now)
    assert report["resent"] == [unsent.pk]
    unsent.refresh_from_db()
    just_created.refresh_from_db()
    assert unsent.sent_at is not None and just_created.sent_at is None


def test_a_job_waiting_for_its_retry_time_is_not_sent_early(db, settings):
    settings.JOB_UNSENT_GRACE_SECONDS = 30
    now = timezone.now()
    Job.objects.create(kind=SELFCHECK, created_at=now - timedelta(hours=1), retry_at=now + timedelta(minutes=5))
    assert jobs_reap_stale(now=now)["resent"] == []
