"""Saving and loading fitted pipelines with skops (never pickle).

A stored artifact is only loaded if (1) its bytes hash to the SHA-256 recorded
when it was saved — so a swapped or corrupted file is refused before skops even
parses it — and (2) every type it references is one the catalog can produce
(``trusted_types()``, probed from the catalog's own pipelines), so a crafted file
cannot make us import and run arbitrary code.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.pipeline import Pipeline

from apps.ml.catalog import CATALOG
from apps.ml.errors import ArtifactError
from apps.ml.train import LEGACY_ARTIFACT_TYPES, TrainingSpec, _target_array, build_pipeline, prepare_inputs


def sha256_bytes(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def dump_pipeline(pipeline: Pipeline) -> bytes:
    """Serialise a fitted pipeline to skops bytes (store ``sha256_bytes`` of the result alongside)."""
    return sio.dumps(pipeline)


def load_pipeline(data: bytes, *, expected_sha256: str) -> Pipeline:
    """Verify and load an artifact produced by ``dump_pipeline``.

    Raises ``ArtifactError`` with ``code`` "hash_mismatch" (bytes differ from
    what was saved), "untrusted_type" (the artifact references a type outside
    the catalog) or the default "bad_artifact" (unreadable, or not a pipeline).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ArtifactError("Model artifact must be bytes.")
    data = bytes(data)
    actual = sha256_bytes(data)
    expected = (expected_sha256 or "").strip().lower()
    if not hmac.compare_digest(actual, expected):
        raise ArtifactError(
            f"Model artifact failed its integrity check: SHA-256 is {actual}, expected {expected or '(none)'}. "
            "The file was modified or replaced after it was saved; refusing to load it.",
            code="hash_mismatch",
        )
    trusted = trusted_types()
    try:
        untrusted = [t for t in sio.get_untrusted_types(data=data) if t not in trusted]
    except Exception as exc:  # skops raises assorted errors on malformed archives
        raise ArtifactError(f"Model artifact cannot be read: {exc}") from exc
    if untrusted:
        raise ArtifactError(
            f"Model artifact contains untrusted type(s): {', '.join(sorted(untrusted))}; refusing to load it.",
            code="untrusted_type",
        )
    try:
        obj: Any = sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise ArtifactError(f"Model artifact cannot be loaded: {exc}") from exc
    if not isinstance(obj, Pipeline):
        raise ArtifactError(f"Model artifact holds a {type(obj).__name__}, not a scikit-learn Pipeline.")
    return obj


# --- the trust probe ------------------------------------------------------------------------------------


def _probe_untrusted_types() -> set[str]:
    """Types skops does not trust by default that pipelines of the catalog contain.

    Fits tiny pipelines of every catalog entry (binary and multiclass targets
    for classifiers) and collects ``skops.io.get_untrusted_types``.
    """
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame(
        {
            "num": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "cat": pd.Series(rng.choice(["a", "b", "c"], n), dtype=object).where(rng.random(n) > 0.1),
            "flag": rng.random(n) < 0.5,
            "y_bin": np.tile(["no", "yes"], n // 2),
            "y_multi": np.tile(["x", "y", "z"], n // 3),
            "y_reg": rng.normal(size=n),
        }
    )
    features = [
        {"name": "num", "role": "numeric"},
        {"name": "cat", "role": "categorical"},
        {"name": "flag", "role": "boolean"},
    ]
    found: set[str] = set(LEGACY_ARTIFACT_TYPES)  # what the previous release's artifacts name
    for entry in CATALOG.values():
        targets = ["y_bin", "y_multi"] if entry.task_type == "classification" else ["y_reg"]
        small = {"n_estimators": 3} if "n_estimators" in entry.param_names else {}
        for target in targets:
            spec = TrainingSpec(entry.task_type, target, features, entry.key, small, split_seed=0)
            pipeline = build_pipeline(spec).fit(prepare_inputs(df, spec), _target_array(df, spec))
            found.update(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    return found


@functools.lru_cache(maxsize=1)
def _trusted_types_cached() -> tuple[str, ...]:
    return tuple(sorted(_probe_untrusted_types()))


def trusted_types() -> list[str]:
    """Fully-qualified type names a saved pipeline of the catalog may contain.

    Computed (once per process) by fitting tiny pipelines of every entry on
    binary, multiclass and regression targets and asking skops which types it
    would not trust by default, so the list follows the installed scikit-learn
    instead of being maintained by hand.
    """
    return list(_trusted_types_cached())
