"""Small tables for tests: a mixed numeric/categorical frame with a learnable target, and a CSV of it."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd


def mixed_frame(rows: int = 300, *, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1.0, rows)
    x2 = rng.uniform(0, 10, rows)
    color = rng.choice(["red", "green", "blue"], rows)
    target = np.where(x1 + rng.normal(0, 0.5, rows) > shift, "yes", "no")
    return pd.DataFrame({"x1": x1.round(4), "x2": x2.round(3), "color": color, "target": target})


def csv_file(frame: pd.DataFrame) -> str:
    fd, path = tempfile.mkstemp(suffix=".csv")
    os.close(fd)
    frame.to_csv(path, index=False)
    return path
