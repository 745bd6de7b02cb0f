"""Training-job benchmark: a real training run through the Celery worker and the Job table,
against the same work done by hand in one process.

Dataset: 100,000 rows x 20 features (15 numeric with ~1% missing, 5 categorical), a
binary text target, fixed seed. The job side is ``run_launch`` (HistGradientBoosting
classifier, default parameters, random_state 0) picked up by a real ``celery worker
--concurrency=1`` subprocess and timed until its Job row says "succeeded". The baseline,
run afterwards in this process so the two never compete for the CPUs, does the same work
by hand: ``pandas.read_csv``, ``build_pipeline`` on the run's own spec, the same holdout
split, the same k-fold cross-validation with the same metrics, the final fit, the holdout
metrics and charts, permutation importance, and ``dump_pipeline`` (skops) to a file.

Target: job wall time <= 1.2 x baseline + 2 s.

    .venv/bin/python bench/training_job.py [--rows 100000] [--repeat 1] [--threads 0] [--keep]
                                           [--database-url URL] [--broker-url URL]

By default everything is embedded in a temporary directory (SQLite database, the SQLite
Celery transport of ``apps.core.broker``), so no server is needed. ``--database-url``
(postgresql://...) and ``--broker-url`` (redis://...) use real services instead; the
objects it creates there get unique names and are left behind.

Both sides' CPU seconds are printed beside their wall times: on a shared 2-CPU machine,
OpenMP contention can slow HistGradientBoosting severalfold, and a wall-time gap with
equal CPU time is the machine, not the job machinery. ``--repeat`` interleaves pairs;
``--threads 1`` (both sides) avoids OpenMP oversubscription for a steadier comparison.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALGORITHM = "hist_gradient_boosting_classifier"
N_NUMERIC = 15
N_CATEGORICAL = 5
POLL_SECONDS = 0.05
WORKER_READY_TIMEOUT = 180.0
JOB_TIMEOUT = 3600.0


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    """15 numeric (~1% missing) + 5 categorical features, binary "yes"/"no" target; fixed seed."""
    rng = np.random.default_rng(seed)
    data = {f"num{i}": rng.normal(i, 1 + i / 10, rows).round(4) for i in range(N_NUMERIC)}
    for i in range(N_CATEGORICAL):
        data[f"cat{i}"] = rng.choice([f"c{i}_{k}" for k in range(4 + 2 * i)], rows)
    logit = (
        (data["num0"] - 0)
        - (data["num1"] - 1) / 2
        + 0.3 * (data["num2"] - 2) * (data["num3"] - 3)
        + (data["cat0"] == "c0_1") * 1.5
        - (data["cat1"] == "c1_2") * 1.0
    )
    target = np.where(logit + rng.normal(0, 1, rows) > 0, "yes", "no")
    frame = pd.DataFrame(data)
    numeric = [f"num{i}" for i in range(N_NUMERIC)]
    frame[numeric] = frame[numeric].mask(rng.random((rows, N_NUMERIC)) < 0.01)
    frame["target"] = target
    return frame


def configure_environment(tmp: str, database_url: str | None, broker_url: str | None) -> None:
    """Settings come from the environment; set them before django.setup() (the worker inherits them)."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "mlops_web.settings",
        "MLOPS_VAR_DIR": tmp,
        "DATABASE_URL": database_url or f"sqlite:///{tmp}/db.sqlite3",
        "CELERY_BROKER_URL": broker_url or f"sqlite:///{tmp}/broker.sqlite3",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LOG_LEVEL": "WARNING",
    })  # fmt: skip


def setup(tmp: str, rows: int, suffix: str) -> dict:
    """Migrate, create the user, the profiled dataset and the experiment through the real services."""
    import django

    django.setup()
    logging.getLogger("kombu.connection").setLevel(logging.ERROR)  # "No hostname" warning for sqlite:// URLs
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from apps.accounts.services import role_groups_ensure
    from apps.core.models import JobStatus
    from apps.core.services import jobs_for
    from apps.datasets.models import Dataset
    from apps.datasets.services import dataset_create, dataset_version_create, dataset_version_profile
    from apps.experiments.services import experiment_create

    role_groups_ensure()
    engineer = User.objects.create_user(f"bench-engineer-{suffix}", email="engineer@example.com")
    engineer.groups.add(Group.objects.get(name="ml_engineer"))

    t0 = time.perf_counter()
    csv_path = os.path.join(tmp, "bench.csv")
    make_frame(rows).to_csv(csv_path, index=False)
    dataset = dataset_create(user=engineer, name=f"bench-training-{suffix}", description="training job bench")
    version, _ = dataset_version_create(
        user=engineer, dataset=dataset, path=csv_path, original_filename="bench.csv"
    )
    # Profile in this process (not timed). The upload also queued a profiling job; mark it
    # done so the worker skips it instead of profiling again while the training job runs.
    dataset_version_profile(version=version)
    jobs_for(version).filter(status=JobStatus.QUEUED).update(
        status=JobStatus.SUCCEEDED, progress=100, message="Profiled in-process by the benchmark"
    )
    version.refresh_from_db()
    dataset = Dataset.objects.get(pk=dataset.pk)
    experiment = experiment_create(
        user=engineer, name=f"bench-training-{suffix}", dataset=dataset, target="target"
    )
    setup_seconds = time.perf_counter() - t0
    return {
        "engineer": engineer,
        "experiment": experiment,
        "version": version,
        "csv_path": csv_path,
        "setup_seconds": setup_seconds,
    }


def start_worker(tmp: str, threads: int) -> tuple[subprocess.Popen, str]:
    log_path = os.path.join(tmp, "worker.log")
    log = open(log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    worker = subprocess.Popen(
        [celery, "-A", "mlops_web", "worker", "--concurrency=1", "--loglevel=WARNING"],
        cwd=ROOT,
        env={**os.environ, **thread_env(threads)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return worker, log_path


def thread_env(threads: int) -> dict[str, str]:
    if not threads:
        # The production rule (README, WORKER_THREADS): cores divided by pool processes; this
        # worker runs one pool process, so it may use every core, like the in-process baseline.
        return {"WORKER_THREADS": str(os.cpu_count() or 1)}
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return {**env, "WORKER_THREADS": str(threads)}


def log_tail(log_path: str, lines: int = 40) -> str:
    try:
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return "(no worker log)"


def wait_for_job(job_id: int, worker: subprocess.Popen, log_path: str, timeout: float) -> None:
    """Poll the Job row every POLL_SECONDS until it succeeds; fail loudly otherwise."""
    from apps.core.models import Job, JobStatus

    deadline = time.monotonic() + timeout
    while True:
        status, error = Job.objects.values_list("status", "error").get(pk=job_id)
        if status == JobStatus.SUCCEEDED:
            return
        if status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise SystemExit(f"job #{job_id} {status}: {error}\n--- worker log ---\n{log_tail(log_path)}")
        if worker.poll() is not None:
            raise SystemExit(
                f"the worker exited (code {worker.returncode}) while job #{job_id} was {status}\n"
                f"--- worker log ---\n{log_tail(log_path)}"
            )
        if time.monotonic() > deadline:
            raise SystemExit(
                f"job #{job_id} still {status} after {timeout:.0f}s\n--- worker log ---\n{log_tail(log_path)}"
            )
        time.sleep(POLL_SECONDS)


def wait_worker_ready(worker: subprocess.Popen, log_path: str) -> float:
    """A trivial core.selfcheck job through the broker proves the worker consumes and runs jobs."""
    from apps.core.services import job_create
    from apps.core.tasks import SELFCHECK

    t0 = time.perf_counter()
    job = job_create(kind=SELFCHECK, params={"steps": 1, "step_seconds": 0}, message="bench warm-up")
    wait_for_job(job.pk, worker, log_path, WORKER_READY_TIMEOUT)
    return time.perf_counter() - t0


def stop_worker(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    worker.terminate()  # SIGTERM: warm shutdown
    try:
        worker.wait(10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(worker.pid, signal.SIGKILL)  # its own session: the pool child goes too
        except ProcessLookupError:
            pass
        worker.wait(10)


def worker_cpu_seconds(worker: subprocess.Popen) -> float:
    """User + system CPU of the worker's main process and its pool child(ren) so far."""
    import psutil

    total = 0.0
    try:
        main = psutil.Process(worker.pid)
        for proc in [main, *main.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return total


def load_average() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def time_job(ctx: dict, worker: subprocess.Popen, log_path: str) -> dict:
    from apps.core.models import Job
    from apps.experiments.models import Run
    from apps.experiments.services import run_launch

    load = load_average()
    cpu0 = worker_cpu_seconds(worker)
    t0 = time.perf_counter()
    run = run_launch(
        user=ctx["engineer"], experiment=ctx["experiment"], algorithm=ALGORITHM, params={}, random_state=0
    )
    wait_for_job(run.job_id, worker, log_path, JOB_TIMEOUT)
    wall = time.perf_counter() - t0
    cpu = worker_cpu_seconds(worker) - cpu0
    job = Job.objects.get(pk=run.job_id)
    run = Run.objects.get(pk=run.pk)
    return {
        "wall": wall,
        "run": run,
        "execution": (job.finished_at - job.started_at).total_seconds(),
        "queue_delay": (job.started_at - job.created_at).total_seconds(),
        "send_delay": (job.sent_at - job.created_at).total_seconds() if job.sent_at else None,
        "attempt": job.attempt,
        "cpu": cpu,
        "load": load,
    }


def baseline(csv_path: str, spec_dict: dict, out_dir: str) -> dict:
    """What run_training + saving does, written by hand; returns the holdout metrics and step times."""
    from sklearn.base import clone
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import StratifiedKFold

    from apps.ml import metrics as M
    from apps.ml.persist import dump_pipeline
    from apps.ml.train import TrainingSpec, build_pipeline, holdout_split

    steps: dict[str, float] = {}
    load = load_average()
    cpu0 = time.process_time()
    t_start = t0 = time.perf_counter()
    df = pd.read_csv(csv_path)
    steps["read"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    spec = TrainingSpec.from_dict(spec_dict)
    train_idx, hold_idx = holdout_split(df, spec)
    X = df[spec.feature_names]
    y = df[spec.target].to_numpy(dtype=object)
    X_train, y_train = X.iloc[train_idx], y[train_idx]
    X_hold, y_hold = X.iloc[hold_idx], y[hold_idx]
    classes = sorted(set(y_train) | set(y_hold))
    template = build_pipeline(spec)

    def evaluate(model, Xe, ye):
        pred = model.predict(Xe)
        proba = M.aligned_proba(model, Xe, classes)
        return M.classification_metrics(ye, pred, proba, classes), pred, proba

    folds = StratifiedKFold(n_splits=spec.cv_folds, shuffle=True, random_state=spec.split_seed)
    cv_scores: dict[str, list] = {}
    for fit_pos, val_pos in folds.split(np.zeros(len(y_train)), y_train):
        fold_model = clone(template).fit(X_train.iloc[fit_pos], y_train[fit_pos])
        scores, _, _ = evaluate(fold_model, X_train.iloc[val_pos], y_train[val_pos])
        for name, value in scores.items():
            cv_scores.setdefault(name, []).append(value)
    steps["cross_validation"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pipeline = clone(template).fit(X_train, y_train)
    steps["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    metrics, pred, proba = evaluate(pipeline, X_hold, y_hold)
    M.confusion_matrix_chart(y_hold, pred, classes)
    M.roc_chart(y_hold, proba, classes)
    steps["evaluate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    Xi, yi = X_hold, y_hold
    if len(Xi) > M.MAX_IMPORTANCE_ROWS:
        keep = np.sort(
            np.random.default_rng(spec.random_state).choice(len(Xi), M.MAX_IMPORTANCE_ROWS, replace=False)
        )
        Xi, yi = Xi.iloc[keep], yi[keep]
    permutation_importance(pipeline, Xi, yi, scoring="accuracy", n_repeats=5, random_state=spec.random_state)
    steps["importance"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    blob = dump_pipeline(pipeline)
    with open(os.path.join(out_dir, "baseline-model.skops"), "wb") as fh:
        fh.write(blob)
    steps["save"] = time.perf_counter() - t0
    return {
        "wall": time.perf_counter() - t_start,
        "cpu": time.process_time() - cpu0,
        "load": load,
        "steps": steps,
        "metrics": metrics,
        "artifact_size": len(blob),
    }


def job_steps(run) -> str:
    """The job's own progress log as 'message @ t' pairs (seconds since the handler started)."""
    entries = [(e["t"], e["message"]) for e in (run.log or [])]
    keep = [
        (t, m) for t, m in entries
        if m.startswith(("Loading", "Cross-validating", "Fitting", "Evaluating", "Computing", "Saving", "Artifact"))
    ]  # fmt: skip
    return ", ".join(f"{m.split(' (')[0].split('…')[0].strip()} @{t:.2f}s" for t, m in keep)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="job/baseline pairs, interleaved; the fastest of each side is compared",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OpenMP/BLAS threads on both sides (0 = library default, as in production)",
    )
    parser.add_argument("--database-url", help="e.g. postgresql://... (default: SQLite in a temp dir)")
    parser.add_argument("--broker-url", help="e.g. redis://... (default: the SQLite transport in a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (database, worker log)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="mlops-bench-training-job-")
    os.makedirs(os.path.join(tmp, "staticfiles"))
    configure_environment(tmp, args.database_url, args.broker_url)
    suffix = uuid.uuid4().hex[:8]
    worker = None
    try:
        ctx = setup(tmp, args.rows, suffix)
        worker, log_path = start_worker(tmp, args.threads)
        ready = wait_worker_ready(worker, log_path)

        jobs, bases = [], []
        for i in range(max(1, args.repeat)):
            jobs.append(time_job(ctx, worker, log_path))
            if i == max(1, args.repeat) - 1:
                stop_worker(worker)  # nothing else of ours uses the CPUs while the last baseline runs
            limits = threadpool_limits(args.threads) if args.threads else None
            bases.append(baseline(ctx["csv_path"], jobs[-1]["run"].spec, tmp))
            if limits is not None:
                limits.restore_original_limits()
        job = min(jobs, key=lambda r: r["wall"])
        base = min(bases, key=lambda r: r["wall"])

        run = job["run"]
        job_wall, base_wall = job["wall"], base["wall"]
        overhead = job_wall - 1.2 * base_wall
        met = job_wall <= 1.2 * base_wall + 2.0
        db = "SQLite" if os.environ["DATABASE_URL"].startswith("sqlite:") else "PostgreSQL"
        broker = "SQLite transport" if os.environ["CELERY_BROKER_URL"].startswith("sqlite:") else "Redis"
        s = base["steps"]
        print(
            f"training job benchmark: {ALGORITHM} (default params, random_state 0), "
            f"{ctx['version'].rows:,} rows x {N_NUMERIC + N_CATEGORICAL} features "
            f"({N_NUMERIC} numeric, {N_CATEGORICAL} categorical), {run.spec['cv_folds']}-fold CV, "
            f"holdout {run.spec['holdout_fraction']}; {db} database, {broker} broker, "
            f"celery worker --concurrency=1, {os.cpu_count()} CPUs, "
            f"{args.threads or 'default'} OpenMP/BLAS threads"
        )
        print(
            f"  setup (dataset + profile + experiment, not timed): {ctx['setup_seconds']:.2f}s; "
            f"worker ready (self-check job done) after {ready:.2f}s"
        )
        print(
            f"  (a) job wall time, run_launch -> Job succeeded:  {job_wall:8.2f}s  "
            f"(worker CPU {job['cpu']:.2f}s, load avg at start {job['load']})"
        )
        send = f", sent to the broker after {job['send_delay']:.3f}s" if job["send_delay"] is not None else ""
        print(f"      queue delay created_at -> started_at:        {job['queue_delay']:8.3f}s{send}")
        print(
            f"      job execution started_at -> finished_at:     {job['execution']:8.2f}s  (attempt {job['attempt']})"
        )
        print(f"      wall minus execution (launch, queue, poll):  {job_wall - job['execution']:8.3f}s")
        print(f"      job progress log: {job_steps(run)}")
        print(
            f"  (b) baseline in-process, same work by hand:  {base_wall:8.2f}s  "
            f"(CPU {base['cpu']:.2f}s, load avg at start {base['load']})"
        )
        print(
            f"      read {s['read']:.2f}s, split+cv {s['cross_validation']:.2f}s, fit {s['fit']:.2f}s, "
            f"evaluate {s['evaluate']:.2f}s, importance {s['importance']:.2f}s, save {s['save']:.2f}s"
        )
        if len(jobs) > 1:
            print(
                f"  fastest of each side shown; all runs (s): job {[round(r['wall'], 2) for r in jobs]}, "
                f"baseline {[round(r['wall'], 2) for r in bases]}"
            )
        print(
            f"  ratio job/baseline:                              {job_wall / base_wall:8.3f}  "
            f"(CPU ratio {job['cpu'] / base['cpu']:.3f})"
        )
        print(f"  job - 1.2 x baseline (allowance 2.00s):          {overhead:8.2f}s")
        print(
            f"  target job <= 1.2 x baseline + 2 s ({1.2 * base_wall + 2:.2f}s): {'met' if met else 'MISSED'}"
        )
        print(
            f"  holdout: job accuracy {run.metrics['accuracy']:.4f} f1 {run.metrics['f1']:.4f}; "
            f"baseline accuracy {base['metrics']['accuracy']:.4f} f1 {base['metrics']['f1']:.4f}; "
            f"artifact {run.artifact_size:,} bytes (baseline {base['artifact_size']:,})"
        )
    finally:
        if worker is not None:
            stop_worker(worker)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
