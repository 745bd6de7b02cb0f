"""Loading a version's model for scoring or serving, whichever kind it is, and whether a version
trained elsewhere may be loaded at all, judged now.

A catalog version loads through ``apps.ml.persist`` (its sha256 and the catalog's types). A
version logged with the MLflow client loads only when it was judged deployable at registration
and still is: its model file's bytes match the sha256 we computed when it was uploaded, and every
type skops reports for it is on our allow-list as the admins keep it today (an entry removed
since the registration is removed for this version too). It is fed the DataFrame its signature
types, never our catalog's prepared frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.core.files.storage import default_storage

from apps.experiments.artifacts import artifact_read
from apps.experiments.models import ArtifactFile
from apps.ml import external_model as em
from apps.ml import persist
from apps.ml.errors import ArtifactError
from apps.ml.prepare import prepare_for

from .models import ModelVersion, TrustedType


def trusted_type_names() -> set[str]:
    """Our allow-list: every type the catalog's pipelines need, plus what admins added."""
    return set(persist.trusted_types()) | set(TrustedType.objects.values_list("name", flat=True))


def deployability_now(version: ModelVersion) -> list[str]:
    """Why ``version`` cannot be loaded or served today (empty: it can); catalog versions always can."""
    if not version.is_external:
        return []
    reasons = list(version.not_deployable_reasons or [])
    if not version.deployable and not reasons:
        reasons.append("it was judged not deployable when it was registered")
    outside = [t for t in version.untrusted_types or [] if t not in trusted_type_names()]
    if outside:
        reasons.append("its artifact needs types no longer on our allow-list: " + ", ".join(outside[:20]))
    return reasons


def refusal_text(version: ModelVersion, reasons: list[str]) -> str:
    return f"{version} is not deployable, because " + "; ".join(reasons) + "."


def external_model_bytes(version: ModelVersion) -> bytes:
    """The model file of an external version, checked against the sha256 recorded for the version."""
    record = ArtifactFile.objects.filter(path=f"{version.storage_root}/{version.model_file}").first()
    if record is None or not version.artifact_sha256 or record.sha256 != version.artifact_sha256:
        raise ArtifactError(f"The model file of {version} is not the one it was registered with.", code="hash_mismatch")
    try:
        return artifact_read(record)
    except FileNotFoundError:
        raise ArtifactError(f"The model file of {version} is missing from storage.", code="artifact_missing") from None
    except OSError:
        raise ArtifactError(f"The model file of {version} does not match its recorded sha256; refusing to load it.",
                            code="hash_mismatch") from None


def load_external_model(version: ModelVersion) -> Any:
    """The estimator of an external version, after every check (never for a not-deployable one)."""
    reasons = deployability_now(version)
    if reasons:
        raise ArtifactError(refusal_text(version, reasons), code="not_deployable")
    return em.load_skops_model(external_model_bytes(version), allowed=trusted_type_names())


@dataclass(frozen=True)
class Scorer:
    """A version's model as the gates score it: ``prepare`` turns a data frame into what it takes;
    class labels are text, as our records keep them."""

    model: Any
    prepare: Callable[[pd.DataFrame], pd.DataFrame]
    classes: list[str]
    task_type: str


def scorer_of(version: ModelVersion) -> Scorer:
    """Load ``version`` for scoring (ArtifactError when it cannot be)."""
    if version.is_external:
        raw = load_external_model(version)
        classifier = hasattr(raw, "classes_")
        model = em.TextLabels(raw) if classifier else raw
        return Scorer(model, lambda frame: em.typed_frame(frame, version.signature),
                      list(model.classes_) if classifier else [],
                      version.model.task_type or ("classification" if classifier else "regression"))
    try:
        with default_storage.open(version.artifact_name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ArtifactError(f"The artifact of {version} is missing from storage.", code="artifact_missing") from None
    pipeline = persist.load_pipeline(data, expected_sha256=version.artifact_sha256)
    return Scorer(pipeline, lambda frame: prepare_for(pipeline, frame), list(version.classes),
                  version.model.task_type)
