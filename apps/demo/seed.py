"""The demo data, built by the real services and jobs of each app.

The demo sits above every app in the order, so it imports them plainly; the steps run
in the apps' order and each is idempotent. Steps that need the worker enqueue jobs and
wait for them, so the site already answers while the demo fills in.
"""

from __future__ import annotations

from apps.demo import datasets, deployments, experiments, maturity, monitoring, notebook, registry

DEMO_STEPS = [datasets.seed, experiments.seed, registry.seed, deployments.seed, monitoring.seed, notebook.seed,
              maturity.seed]


def seed_demo_data(*, stdout=None) -> None:
    for step in DEMO_STEPS:
        summary = step()
        if stdout is not None:
            stdout.write(f"demo: {step.__module__}: {summary}")
