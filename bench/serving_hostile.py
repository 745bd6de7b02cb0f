"""A hostile predict body under gunicorn: one instance with ~430,000 unknown keys (~5 MB).

Deploys the serving bench's model (``bench/serving.py``), starts gunicorn with one
gthread worker, and sends the body sequentially and then several at once. Prints the
status and latency of each answer, the worker's CPU seconds, its RSS before and after,
and its peak RSS (VmHWM, reset before each phase), so the cost of such a request can be
compared across versions of the code.

    .venv/bin/python bench/serving_hostile.py [--root DIR] [--requests 5] [--concurrent 4]

``--root`` runs another checkout of the project (e.g. an older commit exported to a
folder) with this script, so before/after figures come from one session.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KEYS = 430_000


def hostile_body() -> bytes:
    keys = ",".join(f'"k{i:06d}":0' for i in range(KEYS))
    return b'{"instances":[{' + keys.encode() + b"}]}"


def worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def send(port: int, key: str, body: bytes) -> tuple[int, float, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("POST", "/api/v1/predict/bench-model/production/", body,
                 {"Content-Type": "application/json", "Authorization": f"Token {key}"})
    response = conn.getresponse()
    data = response.read()
    return response.status, time.perf_counter() - started, data


def phase(name: str, pid: int, port: int, key: str, body: bytes, count: int, concurrent: int) -> None:
    reset_peak(pid)
    rss0, cpu0 = rss_mb(pid), cpu_seconds(pid)
    results: list[tuple[int, float, bytes]] = []
    lock = threading.Lock()

    def one():
        result = send(port, key, body)
        with lock:
            results.append(result)

    for start in range(0, count, concurrent):
        threads = [threading.Thread(target=one) for _ in range(min(concurrent, count - start))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    statuses = sorted({r[0] for r in results})
    latencies = sorted(r[1] for r in results)
    print(f"  {name}: {count} requests, {concurrent} at a time -> statuses {statuses}, "
          f"latency min {latencies[0] * 1000:.0f} ms / max {latencies[-1] * 1000:.0f} ms, "
          f"worker CPU {cpu_seconds(pid) - cpu0:.2f} s")
    print(f"    worker RSS {rss0:.0f} MB before, {rss_mb(pid):.0f} MB after, peak {rss_mb(pid, 'VmHWM'):.0f} MB"
          f"; answer {len(results[0][2]):,} bytes: {results[0][2][:160]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=4)
    args = parser.parse_args()
    root = Path(args.root).resolve()
    sys.path.insert(0, str(root))
    from bench.services import ThrowawayPostgres, free_port
    from bench.serving import Client, make_frame, setup

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
        ctx = setup("logistic_regression")
        port = free_port()
        gunicorn = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "mlops_web.wsgi:application",
             f"--bind=127.0.0.1:{port}", "--workers=1", "--worker-class=gthread", "--threads=4",
             "--timeout=600", "--log-level=warning"],
            cwd=root, env=os.environ.copy(),
        )
        rows = make_frame(200, seed=1).drop(columns=["target"]).to_dict("records")
        for _ in range(100):
            try:
                Client(port, ctx["key"]).predict(rows[:1])
                break
            except (ConnectionRefusedError, OSError):
                time.sleep(0.2)
        warm = Client(port, ctx["key"])
        for row in rows:
            warm.predict([row])
        pid = worker_pid(gunicorn.pid)
        body = hostile_body()
        print(f"hostile predict body: one instance with {KEYS:,} unknown keys, {len(body) / 1e6:.2f} MB; "
              f"code at {root}")
        phase("sequential", pid, port, ctx["key"], body, args.requests, 1)
        phase("concurrent", pid, port, ctx["key"], body, args.requests * args.concurrent, args.concurrent)
        print(f"  a normal request afterwards: {Client(port, ctx['key']).predict(rows[:1]) * 1000:.1f} ms")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            gunicorn.wait(30)
        pg.stop()


if __name__ == "__main__":
    main()
