"""The Overview (home page), a model's checklist, snapshots, recompute, and the maturity API."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.models import Job
from apps.deployments.models import Environment
from apps.deployments.services import deployment_create
from apps.maturity.models import MaturitySnapshot
from apps.maturity.services import daily_snapshot_due, snapshot_all, snapshot_backfill, snapshot_request
from apps.registry.models import ModelVersion, StageTransition
from apps.registry.services import model_version_register

pytestmark = pytest.mark.django_db


def _more_models(served, analyst, engineer, n: int, start: int):
    """n more models in production (sharing the served run), each deployed with a monitor policy."""
    run = served["version"].run
    for i in range(start, start + n):
        v = model_version_register(user=engineer, run=run, model_name=f"extra-{i}")
        for stage in ("staging", "production"):
            StageTransition.objects.create(model_version=v, from_stage="none", to_stage=stage, actor=analyst)
        ModelVersion.objects.filter(pk=v.pk).update(stage="production")
        v.refresh_from_db()
        deployment_create(user=analyst, version=v, environment=Environment.objects.get(name="production"))
        snapshot_all(trigger="manual")


def _count(client):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/").status_code == 200
    return len(ctx.captured_queries)


def test_overview_query_count_is_constant(served, viewer, analyst, engineer, client_for, django_assert_max_num_queries):
    client = client_for(viewer)
    _more_models(served, analyst, engineer, 1, 0)
    small = _count(client)
    _more_models(served, analyst, engineer, 4, 1)
    with django_assert_max_num_queries(small):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.count(b'data-model="extra-') == 5


def test_overview_shows_portfolio_headline_and_charts(served, viewer, client_for):
    snapshot_all(trigger="manual")
    response = client_for(viewer).get("/")
    text = response.content.decode()
    assert 'data-testid="portfolio"' in text and 'data-model="mature"' in text
    assert 'id="levels-chart"' in text and 'id="steps-chart"' in text and 'id="criteria-chart"' in text
    assert response.context["headline"]["in_production"] == 1
    assert response.context["headline"]["releases"] == 1


def test_model_checklist_has_evidence_and_hints(served, viewer, client_for):
    response = client_for(viewer).get(f"/maturity/models/{served['model'].pk}/")
    text = response.content.decode()
    assert response.status_code == 200
    assert 'data-criterion="lineage" data-met="true"' in text
    assert 'data-criterion="ci_pipeline" data-met="false"' in text
    assert served["version"].run.get_absolute_url() in text
    assert "pipeline-changes" in text  # the CI hint


def test_recompute_by_a_viewer_queues_one_job_and_is_audited(served, viewer, client_for):
    from apps.core.models import AuditEvent

    response = client_for(viewer).post("/maturity/recompute/", {"next": "/"})
    assert response.status_code == 302
    job = Job.objects.get(kind="maturity.snapshot")
    assert snapshot_request(user=viewer) == job, "a pending recompute is reused, not duplicated"
    assert AuditEvent.objects.filter(action="maturity.recompute", actor=viewer).count() == 1
    from apps.core.jobs import JobContext
    from apps.maturity.tasks import take_snapshot

    Job.objects.filter(pk=job.pk).update(status="running")
    job.refresh_from_db()
    result = take_snapshot.handler(JobContext(job))
    assert result["snapshots"] == 1
    assert MaturitySnapshot.objects.get(model=served["model"]).level == 0


def test_daily_snapshot_once_a_day(served):
    first = daily_snapshot_due()
    assert first is not None and first.params["trigger"] == "daily"
    assert daily_snapshot_due() is None


def test_backfill_computes_from_the_records_then(served):
    # the model was created today: every back-dated day predates it, so no invented levels
    assert snapshot_backfill(days=5) == 0
    later = timezone.now() + timedelta(days=3)
    written = snapshot_backfill(days=2, now=later)
    assert written == 2
    snaps = list(MaturitySnapshot.objects.order_by("taken_at"))
    assert all(s.trigger == "backfill" and s.taken_at <= later for s in snaps)


def test_maturity_api(served, viewer, client_for):
    snapshot_all(trigger="manual")
    body = client_for(viewer).get("/api/v1/maturity/").json()
    (entry,) = body
    assert entry["model"] == "mature" and entry["level"] in (0, 1, 2) and 0 <= entry["progress"] <= 1
    assert {"key", "level", "met", "evidence", "hint"} <= set(entry["criteria"][0])
    assert entry["history"] == [{"date": timezone.now().date().isoformat(), "level": entry["level"]}]
