"""Benchmark the upload pipeline: read_table + infer_schema + profile_table on a wide CSV.

Usage: python bench/profile.py [--rows N] [--seed S]

The CSV (20 numeric float columns, 10 categorical string columns of ~20 levels,
about 1% missing cells, fixed seed) is written to a temp dir. Each measurement
runs in a fresh child process so that peak memory is that process's own
maximum resident set size (getrusage ru_maxrss): everything pandas, pyarrow
and numpy allocate, not a tracemalloc estimate, and not the generator's data. A second child times
``df.describe(include="all")`` on the same frame as a yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, sys.path[0] is bench/, where this file would shadow the stdlib
# "profile" module; put the project root there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NUMERIC = 20
CATEGORICAL = 10
LEVELS = 20
MISSING = 0.01


def write_csv(path: Path, rows: int, seed: int) -> None:
    """Generate the benchmark table with numpy and write it with pyarrow (seconds, not minutes)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(NUMERIC):
        values = np.round(rng.normal(loc=i * 10, scale=1 + i, size=rows), 6)
        columns[f"num_{i:02d}"] = pa.array(values, mask=rng.random(rows) < MISSING)
    for i in range(CATEGORICAL):
        levels = np.array([f"cat{i}_level_{j:02d}" for j in range(LEVELS)])
        weights = rng.dirichlet(np.ones(LEVELS))
        values = levels[rng.choice(LEVELS, size=rows, p=weights)]
        columns[f"cat_{i:02d}"] = pa.array(values, mask=rng.random(rows) < MISSING)
    pa_csv.write_csv(pa.table(columns), path)


def child_pipeline(path: str) -> dict:
    """Read, infer and profile; report stage timings and this process's peak RSS."""
    from apps.ml.io import read_table, sniff_format
    from apps.ml.profile import infer_schema, profile_table

    # The drift module (scipy.stats) is imported lazily by profile_table; a worker
    # pays that once per process, so it is timed apart from the per-upload work.
    t_import = time.perf_counter()
    try:
        import apps.ml.drift  # noqa: F401
    except ModuleNotFoundError:
        pass
    drift_import = time.perf_counter() - t_import
    base = _maxrss_mib(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    fmt = sniff_format(path, os.path.basename(path))
    df = read_table(path, fmt)
    t1 = time.perf_counter()
    schema = infer_schema(df)
    t2 = time.perf_counter()
    profile = profile_table(df, schema)
    t3 = time.perf_counter()
    roles: dict[str, int] = {}
    for c in schema:
        roles[c["role"]] = roles.get(c["role"], 0) + 1
    return {
        "shape": list(df.shape),
        "roles": roles,
        "drift_import": drift_import,
        "read": t1 - t0,
        "infer": t2 - t1,
        "profile": t3 - t2,
        "profile_json_bytes": len(json.dumps(profile, allow_nan=False)),
        "has_reference": all("reference" in profile["columns"][c["name"]] for c in schema),
        "baseline_rss_mib": base,
        "peak_rss_mib": _maxrss_mib(resource.RUSAGE_SELF),
    }


def child_describe(path: str) -> dict:
    """Time pandas' own summary on the same frame as the yardstick."""
    from apps.ml.io import read_table

    df = read_table(path, "csv")
    t0 = time.perf_counter()
    df.describe(include="all")
    return {"describe": time.perf_counter() - t0, "peak_rss_mib": _maxrss_mib(resource.RUSAGE_SELF)}


def _maxrss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB


def _run_child(mode: str, path: Path, *extra: str) -> dict:
    """Run one step in a fresh interpreter and return its JSON report.

    Linux carries a process's peak RSS across exec, so the parent stays small
    (it never imports numpy or builds data) lest it inflate the child's number.
    """
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"{mode} child failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, path = args.child
        if mode == "generate":
            t0 = time.perf_counter()
            write_csv(Path(path), args.rows, args.seed)
            report = {"seconds": time.perf_counter() - t0}
        else:
            report = child_pipeline(path) if mode == "pipeline" else child_describe(path)
        print(json.dumps(report))
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    try:
        path = tmp / "bench.csv"
        generated = _run_child("generate", path, "--rows", str(args.rows), "--seed", str(args.seed))
        gen = generated["seconds"]
        size_mib = path.stat().st_size / 2**20

        ours = _run_child("pipeline", path)
        yard = _run_child("describe", path)
        peak = ours["peak_rss_mib"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    total = ours["read"] + ours["infer"] + ours["profile"]
    analyse = ours["infer"] + ours["profile"]
    rows, cols = ours["shape"]
    line = "-" * 64
    print(line)
    print(f"{'input':<38}{rows:,} rows x {cols} cols ({NUMERIC} numeric + {CATEGORICAL} categorical)")
    print(f"{'CSV size':<38}{size_mib:,.1f} MiB (generated in {gen:.1f} s, seed {args.seed})")
    print(f"{'roles inferred':<38}{', '.join(f'{k}={v}' for k, v in sorted(ours['roles'].items()))}")
    print(line)
    print(f"{'read_table':<38}{ours['read']:8.2f} s")
    print(f"{'infer_schema':<38}{ours['infer']:8.2f} s")
    print(f"{'profile_table':<38}{ours['profile']:8.2f} s  (drift references: {ours['has_reference']})")
    print(f"{'total wall time':<38}{total:8.2f} s  (+ one-off drift import {ours['drift_import']:.2f} s)")
    print(f"{'throughput':<38}{rows / total:10,.0f} rows/s")
    print(
        f"{'peak RSS (child process)':<38}{peak:8.0f} MiB  (interpreter + imports: {ours['baseline_rss_mib']:.0f} MiB)"
    )
    print(f"{'profile JSON size':<38}{ours['profile_json_bytes'] / 1024:8.1f} KiB")
    print(line)
    print(f"{'df.describe(include=all)':<38}{yard['describe']:8.2f} s")
    print(f"{'ratio infer+profile / describe':<38}{analyse / yard['describe']:8.2f} x")
    print(f"{'ratio read+infer+profile / describe':<38}{total / yard['describe']:8.2f} x")
    print(line)


if __name__ == "__main__":
    main()
