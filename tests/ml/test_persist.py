"""Artifacts: skops round trip, integrity check and the trusted-type allow-list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from apps.ml.errors import ArtifactError
from apps.ml.persist import dump_pipeline, load_pipeline, sha256_bytes
from apps.ml.train import run_training
from tests.ml.test_train import FEATURES, make_frame, spec_for


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny fits: OpenMP threads only add spin-wait overhead (badly so on a busy machine)."""
    with threadpool_limits(1):
        yield


def _untrusted_function(X):  # referenced by a hostile artifact below
    return X


@pytest.fixture(scope="module")
def trained():
    df = make_frame(n=200, n_classes=3, seed=4)
    return df, run_training(df, spec_for("random_forest_classifier"))


def test_round_trip_gives_identical_predictions(trained) -> None:
    df, result = trained
    data = dump_pipeline(result.pipeline)
    loaded = load_pipeline(data, expected_sha256=sha256_bytes(data))
    X = df[[f["name"] for f in FEATURES]]
    assert np.array_equal(loaded.predict(X), result.pipeline.predict(X))
    assert np.array_equal(loaded.predict_proba(X), result.pipeline.predict_proba(X))
    unseen = X.head(3).assign(color=["violet", None, "red"])
    assert np.array_equal(loaded.predict(unseen), result.pipeline.predict(unseen))


def test_regression_round_trip(tmp_path) -> None:
    df = make_frame("regression", n=150, seed=5)
    result = run_training(df, spec_for("hist_gradient_boosting_regressor", "regression"))
    data = dump_pipeline(result.pipeline)
    (tmp_path / "model.skops").write_bytes(data)
    stored = (tmp_path / "model.skops").read_bytes()
    loaded = load_pipeline(stored, expected_sha256=sha256_bytes(data).upper())
    X = df[[f["name"] for f in FEATURES]]
    assert np.array_equal(loaded.predict(X), result.pipeline.predict(X))


def test_sha256_bytes() -> None:
    assert sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_tampered_bytes_are_refused(trained) -> None:
    _, result = trained
    data = dump_pipeline(result.pipeline)
    digest = sha256_bytes(data)
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    with pytest.raises(ArtifactError) as exc:
        load_pipeline(bytes(tampered), expected_sha256=digest)
    assert exc.value.code == "hash_mismatch"
    assert "integrity" in exc.value.message
    with pytest.raises(ArtifactError) as exc:
        load_pipeline(data, expected_sha256="")
    assert exc.value.code == "hash_mismatch"


def test_untrusted_type_is_refused_even_with_a_valid_hash() -> None:
    hostile = Pipeline([("f", FunctionTransformer(_untrusted_function))]).fit(pd.DataFrame({"a": [1, 2]}))
    data = sio.dumps(hostile)
    with pytest.raises(ArtifactError) as exc:
        load_pipeline(data, expected_sha256=sha256_bytes(data))
    assert exc.value.code == "untrusted_type"
    assert "tests.ml.test_persist._untrusted_function" in exc.value.message


def test_garbage_and_non_pipeline_are_refused() -> None:
    garbage = b"not a zip file"
    with pytest.raises(ArtifactError) as exc:
        load_pipeline(garbage, expected_sha256=sha256_bytes(garbage))
    assert exc.value.code == "bad_artifact"
    not_pipeline = sio.dumps({"a": 1})
    with pytest.raises(ArtifactError, match="not a scikit-learn Pipeline"):
        load_pipeline(not_pipeline, expected_sha256=sha256_bytes(not_pipeline))
