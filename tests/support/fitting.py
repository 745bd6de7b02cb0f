"""A small fitted pipeline for a run, in milliseconds instead of a training job.

``run_training`` cross-validates and computes permutation importance, which is what a
training test is about and what every other test pays for nothing. Here the run's own
spec is fitted once on its holdout split's training rows with ``build_pipeline``,
scored on the holdout by the gates' own ``score_on_holdout`` (so a champion gate
re-scoring it finds the run's metrics again) and serialised by ``apps.ml.persist``.
The fit is deterministic, so it is remembered per (data, spec) for the session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from apps.ml import metrics as M
from apps.ml.gates import score_on_holdout
from apps.ml.persist import dump_pipeline, sha256_bytes
from apps.ml.train import TrainingSpec, _signature, _target_array, build_pipeline, holdout_split


@dataclass(frozen=True)
class FittedArtifact:
    blob: bytes
    sha256: str
    metrics: dict
    charts: dict
    classes: list
    signature: list
    n_train: int
    n_holdout: int


_fitted: dict[tuple[str, str], FittedArtifact] = {}


def fitted_artifact(frame_loader, *, data_sha256: str, spec: dict) -> FittedArtifact:
    """The artifact and holdout figures of ``spec`` fitted on the data (``frame_loader()`` is called on a miss)."""
    key = (data_sha256, json.dumps(spec, sort_keys=True))
    if key not in _fitted:
        _fitted[key] = _fit(frame_loader(), TrainingSpec.from_dict(spec))
    return _fitted[key]


def _fit(frame, spec: TrainingSpec) -> FittedArtifact:
    train_idx, hold_idx = holdout_split(frame, spec)
    X, y = frame[spec.feature_names], _target_array(frame, spec)
    pipeline = build_pipeline(spec).fit(X.iloc[train_idx], y[train_idx])
    classes = [str(c) for c in getattr(pipeline, "classes_", [])]
    scored = score_on_holdout(pipeline, frame, spec, classes)
    if spec.task_type == "classification":
        proba = M.aligned_proba(pipeline, X.iloc[hold_idx], classes)
        charts = {"confusion_matrix": scored["confusion_matrix"], "roc": M.roc_chart(y[hold_idx], proba, classes)}
    else:
        charts = M.residual_charts(y[hold_idx], pipeline.predict(X.iloc[hold_idx]), seed=spec.random_state)
    blob = dump_pipeline(pipeline)
    return FittedArtifact(
        blob=blob, sha256=sha256_bytes(blob), metrics=scored["metrics"], charts=charts, classes=classes,
        signature=_signature(frame, X.iloc[train_idx], spec), n_train=len(train_idx), n_holdout=len(hold_idx),
    )
