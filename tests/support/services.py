"""Real servers a test starts on its own: a Redis it may stop and start again, and gunicorn.

They run beside the suite's shared services (``tests/run.sh``), so stopping one of them
disturbs no other test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.test import Client

from tests.support.worker import ROOT, worker_database_url

BIN = Path(sys.executable).parent
# Django accepts an unmasked secret as the CSRF token; any 32 letters make a valid pair.
CSRF_SECRET = "csrfsecretforsubprocesstests0000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, *, timeout: float, what: str, log=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}" + (f":\n{log()}" if log else ""))


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.pidfile = directory / "redis.pid"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "yes", "--pidfile", str(self.pidfile), "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            check=True,
        )
        wait_for(lambda: port_open(self.port), timeout=10, what="redis to listen")

    def stop(self) -> None:
        if self.pidfile.exists():
            pid = int(self.pidfile.read_text().strip() or 0)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not port_open(self.port), timeout=10, what="redis to stop")


def test_database_env() -> dict:
    env = dict(os.environ)
    env["DATABASE_URL"] = worker_database_url()
    env["DATABASE_CONN_MAX_AGE"] = "0"
    return env


class WebServer:
    """gunicorn serving the site from the test database, in its own processes."""

    def __init__(self, log_dir: Path, *, env: dict | None = None, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self.env = test_database_env() | (env or {})
        self.workers = workers
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 240) -> None:
        log = open(self.log_path, "w")  # noqa: SIM115 - closed with the process
        # --preload: the site is imported once and forked, not once per worker (scikit-learn's
        # import alone takes seconds on a busy machine)
        self.proc = subprocess.Popen(
            [str(BIN / "gunicorn"), "mlops_web.wsgi:application", f"--bind=127.0.0.1:{self.port}",
             f"--workers={self.workers}", "--preload", "--timeout=60", "--graceful-timeout=5"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(self._answers, timeout=timeout, what="gunicorn to answer", log=self.log)

    def _answers(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited at start:\n{self.log()}")
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def session_for(self, user) -> requests.Session:
        """A requests session signed in as ``user`` (its session row lives in the test database)."""
        client = Client()
        client.force_login(user)
        session = requests.Session()
        session.cookies.set("sessionid", client.cookies["sessionid"].value)
        session.cookies.set("csrftoken", CSRF_SECRET)
        session.headers["X-CSRFToken"] = CSRF_SECRET
        return session
