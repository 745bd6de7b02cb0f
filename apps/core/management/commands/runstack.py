"""Run the web server, a Celery worker and Celery beat together; Ctrl-C stops all three.

This is the embedded default of ``make run``: with no DATABASE_URL and no
CELERY_BROKER_URL the three processes share SQLite files under var/. A process that dies
is restarted after a short pause while the others keep running (``apps.core.supervisor``);
only one that keeps crashing stops the stack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.demo_password import demo_password
from apps.core.supervisor import Service, Supervisor


def _clear_beat_schedule() -> None:
    # Only last-run times live there, and a killed beat can leave the file unreadable:
    # start from a clean one (every periodic task simply runs on its next interval).
    for leftover in settings.VAR_DIR.glob("celerybeat-schedule*"):
        leftover.unlink()


def _services(*, host: str, port: int, web_workers: int, concurrency: int) -> list[Service]:
    bin_dir = os.path.dirname(sys.executable)
    schedule = str(settings.VAR_DIR / "celerybeat-schedule")
    return [
        Service("web", [
            os.path.join(bin_dir, "gunicorn"), "mlops_web.wsgi:application", f"--bind={host}:{port}",
            f"--workers={web_workers}", "--threads=4", "--access-logfile=-", "--timeout=120",
        ]),
        Service("worker", [
            os.path.join(bin_dir, "celery"), "-A", "mlops_web", "worker",
            f"--concurrency={concurrency}", "--loglevel=INFO", "-n", f"worker-{os.getpid()}@%h",
        ]),
        Service("beat", [
            os.path.join(bin_dir, "celery"), "-A", "mlops_web", "beat", "--loglevel=INFO", f"--schedule={schedule}",
        ], before_start=_clear_beat_schedule),
    ]


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker and Celery beat; restart one that dies; stop them all on Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
        parser.add_argument("--max-restarts", type=int, default=5,
                            help="restarts of one process allowed within --restart-window before everything stops")
        parser.add_argument("--restart-window", type=float, default=300.0, help="seconds")
        parser.add_argument(
            "--demo", action="store_true", help="seed the demo data in the background once the site is up"
        )

    def handle(self, *args, port: int, host: str, web_workers: int, concurrency: int, demo: bool,
               max_restarts: int, restart_window: float, **options):
        # cores / pool processes OpenMP-BLAS threads each, so training never oversubscribes the CPUs
        os.environ.setdefault("WORKER_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, concurrency))))
        supervisor = Supervisor(
            _services(host=host, port=port, web_workers=web_workers, concurrency=concurrency),
            say=lambda line: self.stderr.write(f"runstack: {line}"),
            max_restarts=max_restarts, window_seconds=restart_window,
        )
        signal.signal(signal.SIGINT, supervisor.request_stop)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        seeding = None
        if demo:
            # The demo is built by the real jobs; the site answers while it fills in.
            seeding = subprocess.Popen(
                [sys.executable, "manage.py", "seed_demo"], start_new_session=True
            )
            threading.Thread(target=self._report_seeding, args=(seeding,), daemon=True).start()
        self.stdout.write(self.style.SUCCESS(f"MLOps dashboard at http://{host}:{port}/  (Ctrl-C stops it)"))
        self.stdout.write(
            "demo users: viewer, engineer, analyst, analyst2, admin; password: "
            + (demo_password() if settings.DEBUG or settings.DEMO_PASSWORD else "(see var/demo_password)")
        )
        exit_code = supervisor.run()
        if seeding is not None and seeding.poll() is None:
            seeding.terminate()
        sys.exit(exit_code)

    def _report_seeding(self, seeding: subprocess.Popen) -> None:
        if seeding.wait():
            self.stderr.write(f"demo seeding failed with code {seeding.returncode}")
