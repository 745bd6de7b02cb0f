"""List and detail pages at scale: server time and query count of each, in process.

Fills PostgreSQL (through INSERT ... SELECT over generate_series, cloning rows the real
services made) with one experiment of 10,000 runs, a model of 1,000 versions beside 999
one-version models, 10,000 promotion requests, 100,000 jobs and 1,000,000 audit events,
then prints, in one run:

1. keyset against offset-and-count on the same tables: the rows of one page of the audit log
   and of the jobs list read by key (``id < cursor ORDER BY id DESC LIMIT n``, what the pages do
   now) and by Django's ``Paginator`` (``COUNT(*)`` plus ``OFFSET``, what they did before), at the
   first page and deeper ones, with the ratio offset/keyset;
2. each page and API list through Django's test client (server time, no network): p50 and p95
   of a few requests, and the queries each made. Goal: p95 <= 150 ms on every line, and the
   same query count on a first and a deep page.

    .venv/bin/python bench/list_pages.py [--runs 10000] [--audit 1000000] [--repeat 7]

Uses DATABASE_URL when set (empty, or filled by an earlier run: then it measures at once),
otherwise starts a throwaway PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.services import ThrowawayPostgres  # noqa: E402


def _environment() -> ThrowawayPostgres | None:
    pg = None
    if not os.environ.get("DATABASE_URL"):
        pg = ThrowawayPostgres()
        os.environ["DATABASE_URL"] = pg.start()
    var = tempfile.mkdtemp(prefix="mlops-bench-pages-")
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "mlops_web.settings", "DEBUG": "0", "SECRET_KEY": "bench-only-secret-key",
        "ALLOWED_HOSTS": "testserver,127.0.0.1", "SECURE_SSL_REDIRECT": "0", "MLOPS_VAR_DIR": var,
        "LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": f"sqlite:///{var}/broker.sqlite3",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    return pg


def _clone(model, base_pk: int, count: int, overrides: dict[str, str], *, start: int = 1) -> None:
    """Insert ``count`` copies of one row; ``overrides`` maps a column to SQL over ``g`` (start..)."""
    from django.db import connection

    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    table = model._meta.db_table
    select = ", ".join(overrides.get(c, f'"{c}"') for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO {table} ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
            f"SELECT {select} FROM {table}, generate_series({start}, {start + count - 1}) AS g WHERE id = {int(base_pk)}"
        )
        cursor.execute(f"ANALYZE {table}")


def _fill_registry(version, promotion, versions: int, models: int, promotions: int) -> None:
    """``versions`` versions of one model, ``models - 1`` one-version models, ``promotions`` requests."""
    from django.db import connection

    from apps.registry.models import ModelVersion, PromotionRequest, RegisteredModel

    _clone(ModelVersion, version.pk, versions - 1, {"version": "version + g", "stage": "'none'",
                                                    "metrics": "jsonb_build_object('accuracy', random())"})
    model = RegisteredModel.objects.get(pk=version.model_id)
    _clone(RegisteredModel, model.pk, models - 1, {"name": "'model-' || g"})
    with connection.cursor() as cursor:  # one version for each of the other models
        columns = [f.column for f in ModelVersion._meta.concrete_fields if not f.primary_key]
        select = ", ".join("m.id" if c == "model_id" else "1" if c == "version" else f'v."{c}"' for c in columns)
        cursor.execute(
            f'INSERT INTO registry_modelversion ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
            f"SELECT {select} FROM registry_modelversion v, registry_registeredmodel m "
            "WHERE v.id = %s AND m.id <> %s", [version.pk, model.pk])
    version_ids = list(ModelVersion.objects.order_by("id").values_list("id", flat=True))
    with connection.cursor() as cursor:  # pending requests on distinct versions (one pending per version)
        cursor.execute("CREATE TEMP TABLE bench_versions AS SELECT row_number() OVER (ORDER BY id) - 1 AS i, id "
                       "FROM registry_modelversion")
        cursor.execute("CREATE INDEX ON bench_versions (i)")
    _clone(PromotionRequest, promotion.pk, promotions - 1, {
        "status": "CASE WHEN g % 5 = 0 THEN 'pending' WHEN g % 5 IN (1, 2) THEN 'approved' ELSE 'rejected' END",
        "model_version_id": f"(SELECT id FROM bench_versions WHERE i = (g / 5) % {len(version_ids)})",
        "target_stage": f"CASE WHEN (g / 5) < {len(version_ids)} THEN 'staging' ELSE 'production' END",
        "created_at": "created_at + g * interval '1 second'",
    })


def fill(runs: int, versions: int, models: int, promotions: int, jobs: int, audit: int) -> dict:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.accounts.services import role_groups_ensure
    from apps.core.models import AuditEvent, Job
    from apps.deployments.services import environments_ensure
    from apps.experiments.models import Run
    from apps.registry.models import RegisteredModel
    from tests.factories import (
        AuditEventFactory,
        ExperimentFactory,
        FittedRunFactory,
        JobFactory,
        ModelVersionFactory,
        PromotionRequestFactory,
        UserFactory,
    )

    role_groups_ensure()
    environments_ensure()
    started = time.perf_counter()
    engineer = UserFactory(username="engineer", engineer=True)
    admin = UserFactory(username="admin", admin=True, roles=["analyst"])
    experiment = ExperimentFactory(name="big", created_by=engineer)
    run = FittedRunFactory(experiment=experiment, created_by=engineer)
    version = ModelVersionFactory(run=run, model_name="big")
    promotion = PromotionRequestFactory(model_version=version, evaluate=False)
    _clone(Run, run.pk, runs - 1, {
        "number": "number + g", "uuid": "md5(g::text || 'run')",
        "metrics": "jsonb_build_object('accuracy', random(), 'f1', random(), 'roc_auc', random())",
        "algorithm": "CASE WHEN g % 2 = 0 THEN 'knn_classifier' ELSE algorithm END",
        "params": "jsonb_build_object('C', (g % 7) + 1)",
    })
    _fill_registry(version, promotion, versions, models, promotions)
    job = JobFactory(created_by=engineer)
    _clone(Job, job.pk, jobs - 1, {
        "status": "CASE WHEN g % 100 = 0 THEN 'failed' WHEN g % 50 = 1 THEN 'queued' ELSE 'succeeded' END",
        "kind": "(ARRAY['experiments.train', 'datasets.profile', 'monitoring.drift_check'])[g % 3 + 1]",
    })
    event = AuditEventFactory(actor=engineer)
    _clone(AuditEvent, event.pk, audit - 1, {
        "action": "(ARRAY['run.launch', 'dataset.upload', 'promotion.approve', 'deployment.create'])[g % 4 + 1]",
        "note": "'event ' || g",
    })
    model = RegisteredModel.objects.get(name="big")
    print(f"filled in {time.perf_counter() - started:.0f} s: {runs:,} runs, {versions:,} versions of one model and "
          f"{models - 1:,} other models, {promotions:,} promotions, {jobs:,} jobs, {audit:,} audit events")
    return {"admin": admin, "experiment": experiment, "model": model}


def filled() -> dict | None:
    """The objects of an earlier fill of this database (DATABASE_URL given), if there was one."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import User

    from apps.experiments.models import Experiment
    from apps.registry.models import RegisteredModel

    experiment = Experiment.objects.filter(name="big").first()
    if experiment is None:
        return None
    print("measuring an earlier fill of this database")
    return {"admin": User.objects.get(username="admin"), "experiment": experiment,
            "model": RegisteredModel.objects.get(name="big")}


def measure(client, url: str, repeat: int) -> tuple[float, float, int, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)
    times, queries = [], 0
    status = 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - t0) * 1000)
        queries, status = len(ctx.captured_queries), response.status_code
    return float(np.percentile(times, 50)), float(np.percentile(times, 95)), queries, status


def _median_ms(read, repeat: int) -> float:
    read()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        read()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def _listings() -> list[tuple[str, object, int]]:
    """The querysets the jobs list and the audit log page through, with their page sizes."""
    from apps.core import views as core_views
    from apps.core.models import AuditEvent, Job

    events = AuditEvent.objects.select_related("actor")
    jobs = Job.objects.select_related("created_by", "target_type").defer("params", "result", "error")
    return [
        ("audit log", events, core_views.AUDIT_EVENTS_PER_PAGE),
        ("audit log, action filter", events.filter(action__startswith="promotion."), core_views.AUDIT_EVENTS_PER_PAGE),
        ("jobs", jobs, core_views.JOBS_PER_PAGE),
        ("jobs, failed", jobs.filter(status="failed"), core_views.JOBS_PER_PAGE),
    ]


def _offset_page(queryset, size: int, number: int) -> list:
    """A numbered page as the lists read it before: Paginator counts every row, then skips."""
    from django.core.paginator import Paginator

    page = Paginator(queryset, size).page(number)
    rows = list(page.object_list)
    assert page.paginator.num_pages >= number
    return rows


def _keyset_rows(queryset, size: int, before: int | None) -> list:
    from apps.core.pagination import keyset_page

    return keyset_page(queryset, before=before, size=size).rows


def keyset_against_offset(repeat: int) -> None:
    """One page of rows read both ways on the same table, at the first page and deeper ones:
    Django's Paginator (COUNT(*) for the page count, then OFFSET) against a keyset page."""
    print(f"\n{'keyset against offset+count':38} {'rows':>9} {'page':>7} {'offset ms':>10} {'keyset ms':>10} "
          f"{'offset/keyset':>14}")
    for label, queryset, size in _listings():
        ordered = queryset.order_by("-id")
        total = ordered.count()
        last = max(1, -(-total // size))
        for number in sorted({1, 100, 1000, last // 2, last} & set(range(1, last + 1))):
            # the cursor a reader following the pager's links would carry to this page
            before = ordered.values_list("id", flat=True)[(number - 1) * size - 1] if number > 1 else None

            by_offset = partial(_offset_page, ordered, size, number)
            by_key = partial(_keyset_rows, queryset, size, before)
            assert [r.pk for r in by_offset()] == [r.pk for r in by_key()], (label, number)
            offset_ms, key_ms = _median_ms(by_offset, repeat), _median_ms(by_key, repeat)
            print(f"{label:38} {total:9,d} {number:7,d} {offset_ms:10.1f} {key_ms:10.1f} {offset_ms / key_ms:13.1f}x")


def pages(objects: dict) -> list[tuple[str, str]]:
    from django.db.models import Min

    from apps.core.models import AuditEvent, Job

    e, m = objects["experiment"].pk, objects["model"].pk
    deep_job = Job.objects.aggregate(Min("id"))["id__min"] + 500  # the last pages of the list
    deep_event = AuditEvent.objects.aggregate(Min("id"))["id__min"] + 500
    return [
        ("experiments list", "/experiments/"),
        ("experiment page, 10,000 runs", f"/experiments/{e}/"),
        ("  sorted by accuracy", f"/experiments/{e}/?sort=-accuracy"),
        ("  page 150", f"/experiments/{e}/?page=150"),
        ("  failed runs", f"/experiments/{e}/?status=failed"),
        ("registry list", "/models/"),
        ("model page, 1,000 versions", f"/models/{m}/"),
        ("promotion queue (pending)", "/models/promotions/"),
        ("promotion queue (all)", "/models/promotions/?status=all"),
        ("promotion queue (rejected, older)", "/models/promotions/?status=rejected&before=100"),
        ("jobs", "/jobs/"),
        ("jobs, failed", "/jobs/?status=failed"),
        ("jobs, 500 from the oldest", f"/jobs/?before={deep_job}"),
        ("audit log", "/audit/"),
        ("audit log, action filter", "/audit/?action=promotion."),
        ("audit log, 500 from the oldest", f"/audit/?before={deep_event}"),
        ("deployments list (picker)", "/deployments/"),
        ("API experiments", "/api/v1/experiments/"),
        ("API an experiment's runs", f"/api/v1/experiments/{e}/"),
        ("API models", "/api/v1/models/"),
        ("API a model's versions", f"/api/v1/models/{m}/"),
        ("API promotions", "/api/v1/promotions/"),
        ("API promotions, older", "/api/v1/promotions/?before=200&limit=200"),
        ("API maturity", "/api/v1/maturity/"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=1_000)
    parser.add_argument("--models", type=int, default=1_000)
    parser.add_argument("--promotions", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--audit", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--only", default="", help="measure only the pages whose label contains this")
    args = parser.parse_args()
    pg = _environment()
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.test import Client
        from django.test.utils import override_settings, setup_test_environment

        setup_test_environment()
        override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
            "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
        objects = filled() or fill(args.runs, args.versions, args.models, args.promotions, args.jobs, args.audit)
        keyset_against_offset(args.repeat)
        client = Client()
        client.force_login(objects["admin"])
        print(f"\n{'page':34} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}  status  (goal p95 <= 150 ms)")
        for label, url in pages(objects):
            if args.only and args.only not in label:
                continue
            p50, p95, queries, status = measure(client, url, args.repeat)
            print(f"{label:34} {p50:8.1f} {p95:8.1f} {queries:8d}  {status}")
    finally:
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
