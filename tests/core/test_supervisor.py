"""The supervisor behind ``make run``, on small real processes: a dead one comes back after
a pause while the others keep running; one that keeps crashing stops them all."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from apps.core.supervisor import Service, Supervisor
from tests.conftest import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CRASHER = [sys.executable, "-c", "raise SystemExit(3)"]


class Running:
    """A supervisor run in a thread, with what it said."""

    def __init__(self, services, **options):
        self.lines: list[str] = []
        self.supervisor = Supervisor(services, say=self.lines.append, stop_timeout=5, **options)
        self.exit_code = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.exit_code = self.supervisor.run(poll_seconds=0.05)

    def stop(self):
        self.supervisor.request_stop()
        self.thread.join(20)


def alive(service: Service) -> bool:
    return service.proc is not None and service.proc.poll() is None


@pytest.fixture
def services():
    made = [Service("worker", SLEEPER), Service("web", SLEEPER)]
    yield made
    for service in made:
        if alive(service):
            service.proc.kill()


def test_a_killed_process_is_restarted_after_a_pause_and_the_others_keep_running(services):
    worker, web = services
    running = Running(services, backoff_seconds=(0.5,))
    wait_until(lambda: alive(worker) and alive(web), timeout=10, message="both to start")
    first_worker, web_pid = worker.proc.pid, web.proc.pid
    os.kill(first_worker, signal.SIGKILL)
    wait_until(lambda: worker.restart_at is not None, timeout=10, message="the exit to be noticed")
    assert not alive(worker), "restarted at once, without the pause"
    wait_until(lambda: alive(worker) and worker.proc.pid != first_worker, timeout=10, message="the restart")
    assert web.proc.pid == web_pid and alive(web)
    assert "worker exited with code -9; restarting it in 0.5s (1 of 5 restarts allowed within 300s)" in running.lines
    running.stop()
    assert running.exit_code == 0


def test_the_pause_grows_with_each_crash():
    crasher = Service("beat", CRASHER)
    running = Running([crasher], backoff_seconds=(0.1, 0.2, 0.4), max_restarts=10)
    wait_until(lambda: len(crasher.crashes) >= 4, timeout=20, message="four crashes")
    running.stop()
    pauses = [line.split("restarting it in ")[1].split("s ")[0] for line in running.lines if "restarting" in line]
    assert pauses[:4] == ["0.1", "0.2", "0.4", "0.4"]


def test_a_process_that_keeps_crashing_stops_everything(services):
    crasher = Service("worker", CRASHER)
    web = services[1]
    running = Running([crasher, web], backoff_seconds=(0.05,), max_restarts=3)
    running.thread.join(30)
    assert running.exit_code == 1
    assert running.lines[-2].startswith("worker exited 4 times within 300s (last code 3); stopping everything")
    assert not alive(web), "the others were left running"


def test_a_stop_request_stops_every_process_and_restarts_none(services):
    running = Running(services)
    wait_until(lambda: all(alive(s) for s in services), timeout=10, message="both to start")
    running.stop()
    assert running.exit_code == 0
    assert not any(alive(s) for s in services)
    assert not any("restarting" in line for line in running.lines)
