"""The demo data, built by the real services and jobs of each app.

Each app contributes a ``seed`` step registered in ``DEMO_STEPS`` (in dependency order);
every step is idempotent. Steps that need the worker enqueue jobs, so the site already
answers while the demo fills in.
"""

from __future__ import annotations

import importlib
import logging

logger = logging.getLogger(__name__)

DEMO_STEPS: list[str] = [
    "apps.datasets.demo:seed",
    "apps.experiments.demo:seed",
    "apps.registry.demo:seed",
    "apps.deployments.demo:seed",
    "apps.monitoring.demo:seed",
    "apps.maturity.demo:seed",
]


def seed_demo_data(*, stdout=None) -> None:
    for dotted in DEMO_STEPS:
        module_name, func_name = dotted.rsplit(":", 1)
        step = getattr(importlib.import_module(module_name), func_name)
        summary = step()
        if stdout is not None:
            stdout.write(f"demo: {dotted}: {summary}")
