"""Serving benchmark: the prediction API under gunicorn against raw in-process scikit-learn.

For a 20-feature tabular model (15 numeric, 5 categorical; logistic regression), it
prints single-instance latency p50/p99 and requests/s at concurrency 1 and 8, and rows/s
for 1,000-instance batches, each beside raw ``pipeline.predict_proba`` on the same rows
in one process, with the overhead ratio. Every API call is logged to PostgreSQL, as in
production. Targets on a 2-core machine: p50 <= 3 ms for one instance with logging;
>= 20,000 rows/s for batches with logging.

    .venv/bin/python bench/serving.py [--requests 2000] [--algorithm logistic_regression]

Uses DATABASE_URL when set, otherwise starts a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from apps.ml.prepare import prepare_for  # noqa: E402
from bench.services import ThrowawayPostgres, free_port  # noqa: E402


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f"num{i}": rng.normal(i, 1 + i / 10, rows).round(4) for i in range(15)}
    for i in range(5):
        data[f"cat{i}"] = rng.choice([f"c{i}_{k}" for k in range(6)], rows)
    logit = data["num0"] - data["num1"] / 2 + (data["cat0"] == "c0_1") * 1.5
    data["target"] = np.where(logit + rng.normal(0, 1, rows) > 0, "yes", "no")
    return pd.DataFrame(data)


def setup(algorithm: str) -> dict:
    """Train, register, approve and deploy through the real services; return what the clients need."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.accounts.services import api_token_create, role_groups_ensure
    from apps.datasets.models import Dataset
    from apps.deployments.models import Environment
    from apps.deployments.services import deployment_create
    from apps.experiments.services import experiment_create, run_launch
    from tests.factories import csv_file, train_inline

    role_groups_ensure()
    engineer = User.objects.create_user("engineer", email="e@example.com")
    engineer.groups.add(Group.objects.get(name="ml_engineer"))
    analyst = User.objects.create_user("analyst", email="a@example.com")
    analyst.groups.add(Group.objects.get(name="analyst"))
    from apps.datasets.services import dataset_create, dataset_version_create, dataset_version_profile

    dataset = dataset_create(user=engineer, name="bench", description="serving bench")
    path = csv_file(make_frame(5000))
    version, _ = dataset_version_create(user=engineer, dataset=dataset, path=path, original_filename="bench.csv")
    os.unlink(path)
    dataset_version_profile(version=version)
    dataset = Dataset.objects.get(pk=dataset.pk)
    experiment = experiment_create(user=engineer, name="bench", dataset=dataset, target="target")
    run = run_launch(user=engineer, experiment=experiment, algorithm=algorithm)
    train_inline(run)
    from apps.registry.models import RegisteredModel
    from apps.registry.services import model_version_register, promotion_approve, promotion_request
    from tests.factories import evaluated

    mv = model_version_register(user=engineer, run=run, model_name="bench-model")
    RegisteredModel.objects.filter(pk=mv.model_id).update(require_staging_first=False)
    for stage in ("staging", "production"):
        p = evaluated(promotion_request(user=engineer, version=mv, target_stage=stage, reason="benchmark"))
        promotion_approve(user=analyst, promotion=p, comment="bench", override_reason="benchmark only")
    mv.refresh_from_db()
    deployment_create(user=analyst, version=mv, environment=Environment.objects.get(name="production"))
    _, key = api_token_create(user=analyst, name="bench")
    from apps.ml.persist import load_pipeline

    pipeline = load_pipeline(run.artifact.read(), expected_sha256=run.artifact_sha256)
    return {"key": key, "pipeline": pipeline}


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


class Client:
    def __init__(self, port: int, key: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Content-Type": "application/json", "Authorization": f"Token {key}"}

    def predict(self, instances) -> float:
        body = json.dumps({"instances": instances})
        started = time.perf_counter()
        self.conn.request("POST", "/api/v1/predict/bench-model/production/", body, self.headers)
        response = self.conn.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200:
            raise SystemExit(f"predict failed: {response.status} {data[:300]!r}")
        return elapsed


def run_concurrent(port, key, instances_list, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    chunks = [instances_list[i::concurrency] for i in range(concurrency)]

    def worker(chunk):
        client = Client(port, key)
        mine = [client.predict([row]) for row in chunk]
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--algorithm", default="logistic_regression")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    pg = None
    if not os.environ.get("DATABASE_URL"):
        pg = ThrowawayPostgres()
        os.environ["DATABASE_URL"] = pg.start()
    var = tempfile.mkdtemp(prefix="mlops-bench-var-")
    os.makedirs(os.path.join(var, "staticfiles"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "mlops_web.settings", "DEBUG": "0", "SECRET_KEY": "bench-only-secret-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "SECURE_SSL_REDIRECT": "0", "MLOPS_VAR_DIR": var,
        "LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": f"sqlite:///{var}/broker.sqlite3",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    gunicorn = None
    try:
        ctx = setup(args.algorithm)
        port = free_port()
        gunicorn = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "mlops_web.wsgi:application",
             f"--bind=127.0.0.1:{port}", f"--workers={args.workers}", "--worker-class=gthread", "--threads=4",
             "--keep-alive=30", "--log-level=warning"],
            cwd=ROOT, env=os.environ.copy(),
        )
        rows = make_frame(args.requests + 2000, seed=1).drop(columns=["target"]).to_dict("records")
        for _ in range(100):
            try:
                Client(port, ctx["key"]).predict(rows[:1])
                break
            except (ConnectionRefusedError, OSError):
                time.sleep(0.2)
        warm = Client(port, ctx["key"])
        for row in rows[:200]:  # every worker process loads and compiles the model
            warm.predict([row])
        sample = rows[200:200 + args.requests]

        pipeline = ctx["pipeline"]
        raw_single = []
        for row in sample[:1000]:
            t0 = time.perf_counter()
            pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame([row])))
            raw_single.append(time.perf_counter() - t0)

        client = Client(port, ctx["key"])
        single = [client.predict([row]) for row in sample]
        wall1, _ = run_concurrent(port, ctx["key"], sample, 1)
        wall8, lat8 = run_concurrent(port, ctx["key"], sample, 8)

        batch = rows[:1000]
        t0 = time.perf_counter()
        for _ in range(5):
            pipeline.predict_proba(prepare_for(pipeline, pd.DataFrame(batch)))
        raw_batch_rows_s = 5000 / (time.perf_counter() - t0)
        client = Client(port, ctx["key"])
        client.predict(batch)
        t0 = time.perf_counter()
        for _ in range(5):
            client.predict(batch)
        api_batch_rows_s = 5000 / (time.perf_counter() - t0)

        p50, p99 = percentile(single, 50) * 1000, percentile(single, 99) * 1000
        raw50, raw99 = percentile(raw_single, 50) * 1000, percentile(raw_single, 99) * 1000
        print(f"serving benchmark: {args.algorithm}, 20 features (15 numeric, 5 categorical), "
              f"gunicorn gthread {args.workers}x4, PostgreSQL logging, {len(sample)} requests")
        print("  single instance latency (client-observed, HTTP + validation + predict + log):")
        print(f"    API  p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
        print(f"    raw  p50 {raw50:7.3f} ms   p99 {raw99:7.3f} ms   (prepare_for + pipeline.predict_proba on a 1-row DataFrame)")
        print(f"    ratio API/raw p50 {p50 / raw50:5.2f}x   target p50 <= 3 ms: {'met' if p50 <= 3 else 'MISSED'}")
        print("  throughput, one instance per request:")
        print(f"    concurrency 1: {len(sample) / wall1:8.0f} req/s   raw in-process: {1 / statistics.mean(raw_single):8.0f} calls/s"
              f"   ratio {len(sample) / wall1 * statistics.mean(raw_single):4.2f}")
        print(f"    concurrency 8: {len(sample) / wall8:8.0f} req/s   p50 {percentile(lat8, 50) * 1000:6.2f} ms"
              f"   p99 {percentile(lat8, 99) * 1000:6.2f} ms")
        print(f"  1,000-instance batches: API {api_batch_rows_s:9.0f} rows/s   raw {raw_batch_rows_s:9.0f} rows/s"
              f"   ratio {api_batch_rows_s / raw_batch_rows_s:4.2f}   target >= 20,000 rows/s: "
              f"{'met' if api_batch_rows_s >= 20000 else 'MISSED'}")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(10)
        if pg is not None:
            pg.stop()


if __name__ == "__main__":
    main()
