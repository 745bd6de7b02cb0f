"""Run the web server, a Celery worker and Celery beat together; Ctrl-C stops all three.

This is the embedded default of ``make run``: with no DATABASE_URL and no
CELERY_BROKER_URL the three processes share SQLite files under var/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.core.demo_password import demo_password


class Command(BaseCommand):
    help = "Start gunicorn, a Celery worker and Celery beat; stop them all on Ctrl-C or if one dies."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "2")))
        parser.add_argument(
            "--demo", action="store_true", help="seed the demo data in the background once the site is up"
        )

    def handle(self, *args, port: int, host: str, web_workers: int, concurrency: int, demo: bool, **options):
        bin_dir = os.path.dirname(sys.executable)
        schedule = str(settings.VAR_DIR / "celerybeat-schedule")
        # Only last-run times live there, and a killed beat can leave the file unreadable:
        # start from a clean one (every periodic task simply runs on its next interval).
        for leftover in settings.VAR_DIR.glob("celerybeat-schedule*"):
            leftover.unlink()
        commands = {
            "web": [
                os.path.join(bin_dir, "gunicorn"),
                "mlops_web.wsgi:application",
                f"--bind={host}:{port}",
                f"--workers={web_workers}",
                "--threads=4",
                "--access-logfile=-",
                "--timeout=120",
            ],
            "worker": [
                os.path.join(bin_dir, "celery"), "-A", "mlops_web", "worker",
                f"--concurrency={concurrency}", "--loglevel=INFO", "-n", f"worker-{os.getpid()}@%h",
            ],
            "beat": [
                os.path.join(bin_dir, "celery"), "-A", "mlops_web", "beat",
                "--loglevel=INFO", f"--schedule={schedule}",
            ],
        }
        # cores / pool processes OpenMP-BLAS threads each, so training never oversubscribes the CPUs
        os.environ.setdefault("WORKER_THREADS", str(max(1, (os.cpu_count() or 1) // max(1, concurrency))))
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop_all(*_):
            nonlocal stopping
            if stopping:
                return
            stopping = True
            self.stdout.write("stopping web, worker and beat…")
            for proc in processes.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            for proc in processes.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()

        signal.signal(signal.SIGINT, stop_all)
        signal.signal(signal.SIGTERM, stop_all)
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, start_new_session=True)
        if demo:
            # The demo is built by the real jobs; the site answers while it fills in.
            processes["demo-seed"] = subprocess.Popen(
                [sys.executable, "manage.py", "seed_demo"], start_new_session=True
            )
        self.stdout.write(self.style.SUCCESS(f"MLOps dashboard at http://{host}:{port}/  (Ctrl-C stops it)"))
        self.stdout.write(
            "demo users: viewer, engineer, analyst, analyst2, admin; password: "
            + (demo_password() if settings.DEBUG or settings.DEMO_PASSWORD else "(see var/demo_password)")
        )
        exit_code = 0
        try:
            while not stopping:
                for name, proc in list(processes.items()):
                    if name == "demo-seed":
                        if proc.poll() is not None:
                            if proc.returncode:
                                self.stderr.write(f"demo seeding failed with code {proc.returncode}")
                            del processes[name]
                        continue
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the others")
                        exit_code = proc.returncode or 1
                        stop_all()
                        break
                time.sleep(0.5)
        finally:
            stop_all()
        sys.exit(exit_code)
