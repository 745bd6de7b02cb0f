"""``make run``'s stack in its embedded mode (SQLite database and broker): gunicorn with two
processes, a Celery worker and beat under ``runstack``. A killed worker or beat comes back
while the site keeps answering, and guessed API tokens are counted across the web
processes in SQLite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import wait_until
from tests.support.services import free_port
from tests.support.worker import ROOT


@pytest.fixture(scope="module")
def embedded_env(tmp_path_factory):
    var = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update(MLOPS_VAR_DIR=str(var), API_TOKEN_FAILURE_LIMIT="3", PYTHONUNBUFFERED="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=900)
    return env


class Stack:
    def __init__(self, env: dict, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runstack", f"--port={self.port}", "--web-workers=2", "--concurrency=1"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"runstack: {name} started \(pid (\d+)\)", self.log())]

    def count(self, marker: str) -> int:
        return self.log().count(marker)

    def answers(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


WORKER_READY = " ready."
BEAT_STARTED = "beat: Starting..."


@pytest.fixture(scope="module")
def stack(embedded_env, tmp_path_factory):
    running = Stack(embedded_env, tmp_path_factory.mktemp("stack") / "runstack.log")
    try:
        wait_until(lambda: running.answers() and running.count(WORKER_READY) and running.count(BEAT_STARTED),
                   timeout=300, interval=1, message="the stack to come up")
    except AssertionError:
        running.stop()
        raise AssertionError(running.log()[-5000:]) from None
    yield running
    running.stop()


def kill_and_watch(stack: Stack, name: str, ready_marker: str) -> list[bool]:
    """SIGKILL the process (and its children) and answer what the site said meanwhile."""
    before_pids, before_ready = stack.pids(name), stack.count(ready_marker)
    os.killpg(before_pids[-1], signal.SIGKILL)
    answers = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        answers.append(stack.answers())
        if len(stack.pids(name)) > len(before_pids) and stack.count(ready_marker) > before_ready:
            return answers
        time.sleep(0.5)
    raise AssertionError(f"{name} did not come back:\n{stack.log()[-5000:]}")


def test_a_killed_worker_comes_back_and_the_site_keeps_answering(stack):
    answers = kill_and_watch(stack, "worker", WORKER_READY)
    assert all(answers), f"the site stopped answering: {answers}"
    assert re.search(r"runstack: worker exited with code -9; restarting it in 1s", stack.log())
    assert stack.proc.poll() is None


def test_a_killed_beat_comes_back_and_the_site_keeps_answering(stack):
    answers = kill_and_watch(stack, "beat", BEAT_STARTED)
    assert all(answers), f"the site stopped answering: {answers}"
    assert stack.proc.poll() is None


def test_guessed_tokens_are_counted_across_the_web_processes_on_sqlite(stack):
    statuses = [
        requests.get(f"{stack.url}/api/v1/jobs/1/", headers={"Authorization": f"Token mlw_guess{i}",
                                                            "Connection": "close"}, timeout=30).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 429, 429]
