"""Start, stop and kill a real Celery worker process pointed at the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from mlops_web.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]

# Short heartbeats so that a killed worker is noticed within seconds in the tests.
WORKER_ENV = {
    "JOB_HEARTBEAT_SECONDS": "0.5",
    "JOB_STALE_SECONDS": "4",
    "JOB_REAPER_INTERVAL_SECONDS": "1",
    "JOB_RETRY_DELAYS": "1,1,1",
    "JOB_UNSENT_GRACE_SECONDS": "1",
    "MONITOR_SCHEDULER_INTERVAL_SECONDS": "1",
}


def worker_database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class WorkerProcess:
    def __init__(self, *, log_dir: Path, beat: bool = False, env: dict | None = None):
        self.log_dir = log_dir
        self.beat = beat
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env.update(WORKER_ENV)
        env["DATABASE_URL"] = worker_database_url()
        env["DATABASE_CONN_MAX_AGE"] = "0"
        env.update(self.extra_env)
        return env

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.starts}.log"

    def start(self, timeout: float = 60) -> None:
        self.starts += 1
        command = [
            os.path.join(os.path.dirname(sys.executable), "celery"),
            "-A", "mlops_web", "worker", "--pool=prefork", "--concurrency=2",
            "--loglevel=INFO", "-n", f"test-{os.getpid()}-{self.starts}@%h",
            "--without-mingle", "--without-gossip",
        ]
        if self.beat:
            # a fresh schedule file per start: a SIGKILLed beat can leave its shelve file unreadable
            command += ["-B", f"--schedule={self.log_dir / f'beat-schedule-{self.starts}'}"]
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Celery worker exited at start:\n{self.log()}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"the Celery worker did not become ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as an OOM killer would."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def purge(self) -> None:
        celery_app.control.purge()
