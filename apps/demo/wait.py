"""Waiting helpers for the demo seed, which runs in the background while the worker works."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], bool], *, what: str, timeout: float = 900, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"demo seed: gave up waiting for {what} after {timeout:.0f}s (is the worker running?)")
