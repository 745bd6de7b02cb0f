"""Keeps a few long-running processes up: a dead one is restarted after a growing pause,
the others keep running, and only a process that keeps crashing stops them all.

``runstack`` (``make run``) supervises gunicorn, a Celery worker and Celery beat with it:
a worker killed by the OOM killer comes back in a second and the site stays up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Service:
    name: str
    command: list[str]
    before_start: Callable[[], None] | None = None  # e.g. clear state a killed process left behind
    proc: subprocess.Popen | None = None
    crashes: deque = field(default_factory=deque)  # monotonic times of recent exits
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        services: list[Service],
        *,
        say: Callable[[str], None],
        max_restarts: int = 5,
        window_seconds: float = 300.0,
        backoff_seconds: tuple[float, ...] = (1, 2, 4, 8, 16, 30),
        stop_timeout: float = 20.0,
    ):
        self.services = services
        self.say = say
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self.backoff_seconds = backoff_seconds
        self.stop_timeout = stop_timeout
        # a plain flag: a signal handler must not take the lock an Event would
        self.stopping = False

    def start(self, service: Service) -> None:
        if service.before_start:
            service.before_start()
        service.proc = subprocess.Popen(service.command, start_new_session=True)
        service.restart_at = None
        self.say(f"{service.name} started (pid {service.proc.pid})")

    def request_stop(self, *_) -> None:
        """What Ctrl-C and SIGTERM do; safe to call from a signal handler or another thread."""
        self.stopping = True

    def run(self, poll_seconds: float = 0.5) -> int:
        """Start every service and keep them up until asked to stop; 0, or 1 after repeated crashes."""
        try:
            for service in self.services:
                self.start(service)
            while not self.stopping:
                failure = self.check(time.monotonic())
                if failure:
                    self.say(failure)
                    return 1
                time.sleep(poll_seconds)
            return 0
        finally:
            self.stop_all()

    def check(self, now: float) -> str | None:
        """Notice exits and due restarts; the reason to give up, if a service crashed too often."""
        for service in self.services:
            if service.restart_at is not None:
                if now >= service.restart_at:
                    self.start(service)
                continue
            code = service.proc.poll()
            if code is None:
                continue
            service.crashes.append(now)
            while service.crashes and service.crashes[0] < now - self.window_seconds:
                service.crashes.popleft()
            count = len(service.crashes)
            if count > self.max_restarts:
                return (f"{service.name} exited {count} times within {self.window_seconds:.0f}s "
                        f"(last code {code}); stopping everything")
            delay = self.backoff_seconds[min(count, len(self.backoff_seconds)) - 1]
            service.restart_at = now + delay
            self.say(f"{service.name} exited with code {code}; restarting it in {delay:g}s "
                     f"({count} of {self.max_restarts} restarts allowed within {self.window_seconds:.0f}s)")
        return None

    def stop_all(self) -> None:
        running = [s.proc for s in self.services if s.proc is not None and s.proc.poll() is None]
        if running:
            self.say("stopping " + ", ".join(s.name for s in self.services if s.proc in running) + "…")
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the process and its children (a pool, workers)
                proc.wait()
