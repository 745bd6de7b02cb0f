"""Tracking benchmark: our MLflow-compatible server (gunicorn, PostgreSQL) against the real
``mlflow server`` (sqlite backend, proxied artifacts), driven by the same MLflow client.

For each server it times 1,000 ``log_metric`` calls, one ``log_batch`` of 1,000 metrics,
``log_model`` of a ~5 MB skops model, ``search_runs`` over 1,000 runs and ``load_model`` by
alias, and prints each figure with the ratio ours/MLflow's (goal: <= 1 on every line). It then
counts the queries of an MLflow experiment's page at 10 and at 10,000 runs (goal: equal).

    .venv/bin/python bench/tracking.py [--workers 2]

The real server lives in a bench-only virtual environment made on first use under
var/bench-mlflow-venv: the full mlflow 3.18.0 wheel without its dependencies, then the
dependencies it lists (mlflow-skinny/-tracing 3.18.0 are not on the index: 3.17.2 stand in).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.services import ThrowawayPostgres, free_port  # noqa: E402

VENV = ROOT / "var" / "bench-mlflow-venv"
UV = ROOT / ".tools" / "bin" / "uv"
MLFLOW_VERSION = "3.18.0"
STAND_INS = {"mlflow-skinny": "3.17.2", "mlflow-tracing": "3.17.2"}

# Runs in a child process with the app's MLflow client; prints one JSON line of timings.
WORKLOAD = r'''
import json, os, sys, time
import numpy as np, pandas as pd
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric
from sklearn.ensemble import RandomForestClassifier

def timed(fn):
    started = time.perf_counter(); fn(); return time.perf_counter() - started

client = MlflowClient()
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(2000, 10)), columns=[f"f{i}" for i in range(10)])
y = (X["f0"] + rng.normal(size=2000) > 0).astype(int)
forest = RandomForestClassifier(n_estimators=60, random_state=0).fit(X, y)
out = {}
mlflow.set_experiment("bench-metrics")
with mlflow.start_run() as run:
    out["log_metric x1000"] = timed(lambda: [mlflow.log_metric("m", float(i), step=i) for i in range(1000)])
    now = int(time.time() * 1000)
    batch = [Metric(f"b{i}", float(i), now, 0) for i in range(1000)]
    batch_run = client.create_run(run.info.experiment_id)
    out["log_batch of 1000"] = timed(lambda: client.log_batch(batch_run.info.run_id, metrics=batch))
    holder = {}
    def log_model():
        holder["info"] = mlflow.sklearn.log_model(forest, name="model", serialization_format="skops",
                                                  skops_trusted_types=["sklearn.tree._tree.Tree"],
                                                  input_example=X.head(3))
    out["log_model (skops)"] = timed(log_model)
    folder = mlflow.artifacts.download_artifacts(f"models:/{holder['info'].model_id}")
    out["model_bytes"] = os.path.getsize(os.path.join(folder, "model.skops"))
version = mlflow.register_model(f"models:/{holder['info'].model_id}", "bench-model")
client.set_registered_model_alias("bench-model", "bench", version.version)
experiment = mlflow.set_experiment("bench-search")
for i in range(1000):
    client.create_run(experiment.experiment_id, tags={"i": str(i)})
def search():
    found = mlflow.search_runs(experiment_ids=[experiment.experiment_id])
    assert len(found) == 1000, len(found)
out["search_runs over 1000"] = timed(search)
out["load_model by alias"] = timed(lambda: mlflow.pyfunc.load_model("models:/bench-model@bench"))
print(json.dumps(out))
'''


def ensure_mlflow_venv() -> Path:
    python = VENV / "bin" / "python"
    if (VENV / "bin" / "mlflow").exists():
        return VENV
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(UV), "pip", "install", "--python", str(python), "--no-deps", f"mlflow=={MLFLOW_VERSION}"],
                   check=True)
    listed = subprocess.run([str(python), "-c", (
        "import importlib.metadata as m, json; print(json.dumps([r for r in m.requires('mlflow') "
        "if 'extra ==' not in r]))")], check=True, capture_output=True, text=True)
    wanted = []
    for requirement in json.loads(listed.stdout):
        name = requirement.split(";")[0].split("<")[0].split(">")[0].split("=")[0].split("!")[0].strip()
        wanted.append(f"{name}=={STAND_INS[name]}" if name in STAND_INS else requirement)
    subprocess.run([str(UV), "pip", "install", "--python", str(python), *wanted], check=True)
    return VENV


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - a local bench server
            return
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(0.3)
    raise SystemExit(f"{url} did not come up in {timeout:.0f} s")


def run_workload(tracking_uri: str, env_extra: dict) -> dict:
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_DISABLE_TELEMETRY": "true", **env_extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    done = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"workload against {tracking_uri} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def prepare_database() -> str:
    """Migrate, and make the engineer the client logs in as; returns their API token."""
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.accounts.services import api_token_create, role_groups_ensure

    role_groups_ensure()
    user = User.objects.create_user("bench-engineer", password="bench-password-1")
    user.groups.add(Group.objects.get(name="ml_engineer"))
    _, key = api_token_create(user=user, name="bench")
    return key


def our_server(workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "mlops_web.wsgi:application",
         f"--bind=127.0.0.1:{port}", f"--workers={workers}", "--worker-class=gthread", "--threads=4",
         "--keep-alive=30", "--log-level=warning", "--timeout=300"], cwd=ROOT, env=os.environ.copy(),
        start_new_session=True)
    return server, f"http://127.0.0.1:{port}/mlflow"


def mlflow_server(workers: int, var: str) -> tuple[subprocess.Popen, str]:
    venv = ensure_mlflow_venv()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE"))}
    server = subprocess.Popen(
        [str(venv / "bin" / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{var}/mlflow.db",
         "--artifacts-destination", f"{var}/mlflow-artifacts", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)], env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, cwd=var,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return server, f"http://127.0.0.1:{port}"


def page_queries(runs: int) -> int:
    """Queries of an MLflow experiment's page with ``runs`` runs (made directly, in bulk)."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    from apps.experiments.models import Experiment, MlflowRunStatus, Run, RunSource

    experiment = Experiment.objects.create(name=f"bench-page-{runs}", source="mlflow")
    Run.objects.bulk_create([
        Run(experiment=experiment, number=i + 1, source=RunSource.MLFLOW, name=f"r{i}",
            mlflow_status=MlflowRunStatus.FINISHED, metrics={"accuracy": i / runs}, params={"i": str(i)})
        for i in range(runs)], batch_size=2000)
    browser = Client()
    browser.force_login(User.objects.get(username="bench-engineer"))
    plain_static = {"staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    with override_settings(STORAGES={**settings.STORAGES, **plain_static}):  # no collectstatic in a bench
        browser.get(experiment.get_absolute_url())
        with CaptureQueriesContext(connection) as captured:
            response = browser.get(experiment.get_absolute_url(), {"sort": "-metrics.accuracy"})
    assert response.status_code == 200, response.status_code
    return len(captured.captured_queries)


def print_page_queries() -> None:
    small, large = page_queries(10), page_queries(10_000)
    print(f"  MLflow experiment page queries: {small} with 10 runs, {large} with 10,000 runs "
          f"({'constant' if small == large else 'GROWS'})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pages-only", action="store_true", help="only the page's query count")
    args = parser.parse_args()
    pg = ThrowawayPostgres()
    os.environ["DATABASE_URL"] = pg.start()
    var = tempfile.mkdtemp(prefix="mlops-bench-tracking-")
    os.makedirs(os.path.join(var, "staticfiles"))
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "mlops_web.settings", "DEBUG": "0", "SECRET_KEY": "bench-only-secret-key",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver", "SECURE_SSL_REDIRECT": "0", "MLOPS_VAR_DIR": var,
        "LOG_LEVEL": "WARNING", "CELERY_BROKER_URL": f"sqlite:///{var}/broker.sqlite3",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    })
    servers = []
    try:
        key = prepare_database()
        if args.pages_only:
            print_page_queries()
            return
        ours, our_uri = our_server(args.workers)
        servers.append(ours)
        theirs, their_uri = mlflow_server(args.workers, var)
        servers.append(theirs)
        wait_for(our_uri.replace("/mlflow", "/healthz"))
        # MLflow's server starts a job runner and migrates its database first: minutes on a busy machine
        wait_for(f"{their_uri}/health", timeout=600)
        mine = run_workload(our_uri, {"MLFLOW_TRACKING_TOKEN": key})
        reference = run_workload(their_uri, {})
        print(f"Tracking, same MLflow client, {args.workers} workers each "
              f"(ours: gunicorn + PostgreSQL; MLflow {MLFLOW_VERSION}: sqlite)")
        print(f"  {'figure':26} {'ours (s)':>10} {'MLflow (s)':>11} {'ours/MLflow':>12}")
        for name, value in mine.items():
            if name == "model_bytes":
                continue
            ratio = value / reference[name]
            print(f"  {name:26} {value:10.3f} {reference[name]:11.3f} {ratio:11.2f}x {'ok' if ratio <= 1 else 'SLOWER'}")
        print(f"  (the skops model is {mine['model_bytes'] / 1e6:.1f} MB)")
        print_page_queries()
    finally:
        for server in servers:  # each server and the workers it forked share a session of their own
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
        pg.stop()


if __name__ == "__main__":
    main()
