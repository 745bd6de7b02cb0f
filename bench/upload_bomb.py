"""Peak memory of the web process when a Parquet decompression bomb is uploaded.

Usage: ``.venv/bin/python bench/upload_bomb.py [--rows N] [--row-groups G]``

Writes a zstd Parquet file of ``--rows`` rows x 4 constant int64 columns (100M rows by
default: about 1.8 MB on disk, 3.2 GB once decoded), then posts it to the dataset upload
form through Django's test client in this process, on a throwaway SQLite database, the
way a browser would. Prints the status, the time the request took and the process's peak
RSS before and after the request (``ru_maxrss``). The worker's side is not measured here:
the point is what one upload costs the web tier.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write_bomb(path: str, rows: int, row_groups: int) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    per_group = max(1, rows // row_groups)
    schema = pa.schema([(name, pa.int64()) for name in "abcd"])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        written = 0
        while written < rows:
            n = min(per_group, rows - written)
            writer.write_table(pa.table({name: np.zeros(n, dtype=np.int64) for name in "abcd"}))
            written += n
    return os.path.getsize(path)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--row-groups", type=int, default=100)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="upload-bomb-")
    bomb = os.path.join(work, "bomb.parquet")
    size = write_bomb(bomb, args.rows, args.row_groups)

    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "mlops_web.settings", "DEBUG": "1", "MLOPS_VAR_DIR": work,
        "DATABASE_URL": f"sqlite:///{work}/db.sqlite3", "CELERY_BROKER_URL": "memory://",
        "ALLOWED_HOSTS": "testserver", "LOG_LEVEL": "WARNING",
    })
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.test import Client

    from apps.datasets.models import Dataset

    call_command("migrate", verbosity=0)
    engineer = User.objects.create_user("engineer", password="x")
    engineer.groups.add(Group.objects.get(name="ml_engineer"))
    dataset = Dataset.objects.create(name="bomb", owner=engineer)
    client = Client()
    client.force_login(engineer)
    with open(bomb, "rb") as fh:
        upload = SimpleUploadedFile("bomb.parquet", fh.read())

    before = peak_rss_mb()
    started = time.perf_counter()
    response = client.post(f"/datasets/{dataset.pk}/upload/", {"file": upload, "note": ""})
    elapsed = time.perf_counter() - started
    after = peak_rss_mb()
    text = response.content.decode(errors="replace")
    reason = text.split('data-testid="upload-error">', 1)[1].split("<", 1)[0] if "upload-error" in text else ""
    print(f"bomb: {args.rows:,} rows x 4 columns, {size / 1e6:.1f} MB on disk, {args.row_groups} row groups")
    print(f"status {response.status_code} in {elapsed:.2f} s; {reason.strip()[:160]}")
    print(f"peak RSS before the request {before:,.0f} MB, after {after:,.0f} MB (+{after - before:,.0f} MB)")


if __name__ == "__main__":
    main()
