"""Saving and loading fitted pipelines with skops (never pickle).

A stored artifact is only loaded if (1) its bytes hash to the SHA-256 recorded
when it was saved — so a swapped or corrupted file is refused before skops even
parses it — and (2) every type it references is one the catalog can produce
(``catalog.trusted_types()``), so a crafted file cannot make us import and run
arbitrary code.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

from apps.ml import catalog
from apps.ml.errors import ArtifactError


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
    trusted = catalog.trusted_types()
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
