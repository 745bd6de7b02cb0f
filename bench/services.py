"""Throwaway PostgreSQL for benchmarks (the same recipe as tests/run.sh)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThrowawayPostgres:
    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            raise SystemExit("PostgreSQL server binaries are needed: apt-get install -y postgresql")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="mlops-bench-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.root = os.getuid() == 0
        self.user = "postgres" if self.root else os.environ.get("USER", "postgres")

    def _run(self, *args: str) -> None:
        command = (["runuser", "-u", "postgres", "--"] if self.root else []) + list(args)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> str:
        data = os.path.join(self.dir, "data")
        if self.root:
            shutil.chown(self.dir, "postgres")
        self._run(f"{self.bin}/initdb", "-D", data, "-U", self.user, "-A", "trust", "--no-sync")
        self._run(f"{self.bin}/pg_ctl", "-D", data, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c max_connections=100", "start")
        self._run(f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "bench")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/bench"

    def stop(self) -> None:
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
