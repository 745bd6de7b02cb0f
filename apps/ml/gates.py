"""Promotion gates: each judges one aspect of a challenger and says why, in words.

Pure functions over metrics, signatures and fitted pipelines; the registry app loads
the records and stores the verdicts as a promotion request's evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import metrics as M
from .prepare import prepare_for
from .train import TrainingSpec, _target_array, holdout_split


@dataclass
class Gate:
    key: str
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def gate_threshold(metrics: dict, *, metric: str, threshold: float) -> Gate:
    name = f"{M.METRICS.get(metric, {}).get('label', metric)} meets the model's threshold"
    value = metrics.get(metric)
    higher = M.METRICS.get(metric, {}).get("higher_is_better", True)
    if value is None:
        return Gate("threshold", name, False, f"The run has no {metric} value on its holdout.")
    passed = value >= threshold if higher else value <= threshold
    sign = "≥" if higher else "≤"
    verdict = "meets" if passed else "misses"
    return Gate("threshold", name, passed, f"Holdout {metric} {_fmt(value)} {verdict} the threshold {sign} {threshold:g}.")


def gate_champion(
    *, metric: str, challenger: float | None, champion: float | None, margin: float, champion_label: str | None,
    rows: int | None = None,
) -> Gate:
    name = "Not worse than the current champion on the same holdout"
    if champion_label is None:
        return Gate("champion", name, True, "There is no champion in the target stage yet; nothing to beat.")
    if challenger is None or champion is None:
        return Gate("champion", name, False, f"Could not score both models on the same holdout ({metric} missing).")
    higher = M.METRICS.get(metric, {}).get("higher_is_better", True)
    worse_by = (champion - challenger) if higher else (challenger - champion)
    passed = worse_by <= margin
    on = f" on the same {rows} holdout rows" if rows else ""
    if worse_by <= 0:
        comparison = f"better than or equal to {champion_label} ({_fmt(champion)}) by {abs(worse_by):.4f}"
    else:
        comparison = f"worse than {champion_label} ({_fmt(champion)}) by {worse_by:.4f}"
    limit = "within" if passed else "beyond"
    return Gate("champion", name, passed,
                f"Challenger {metric} {_fmt(challenger)}{on} is {comparison}, {limit} the allowed margin {margin:g}.")


def gate_signature(challenger: list[dict], champion: list[dict] | None, champion_label: str | None) -> Gate:
    name = "Input signature compatible with the champion's"
    if champion is None:
        return Gate("signature", name, True, "No champion in the target stage; any signature is acceptable.")
    mine = {f["name"]: f.get("role") for f in challenger}
    theirs = {f["name"]: f.get("role") for f in champion}
    added = sorted(set(mine) - set(theirs))
    removed = sorted(set(theirs) - set(mine))
    retyped = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
    problems = []
    if added:
        problems.append(f"needs new features {', '.join(added)} (clients of {champion_label} do not send them)")
    if removed:
        problems.append(f"drops features {', '.join(removed)}")
    if retyped:
        problems.append("changes the type of " + ", ".join(f"{n} ({theirs[n]} → {mine[n]})" for n in retyped))
    if problems:
        return Gate("signature", name, False, "The challenger " + "; ".join(problems) + ".")
    return Gate("signature", name, True, f"Same {len(mine)} features with the same types as {champion_label}.")


def gate_validation(*, status: str, overridden: bool, version_label: str, override_note: str = "",
                    subject: str = "Training data") -> Gate:
    name = f"{subject} passed validation"
    if status in ("pass", "warn"):
        return Gate("validation", name, True, f"{version_label} validation: {status}.")
    if overridden:
        return Gate("validation", name, False,
                    f"{version_label} failed validation; it was only used through an override ({override_note}).")
    return Gate("validation", name, False, f"{version_label} validation: {status}.")


def gate_staging_first(*, target_stage: str, was_in_staging: bool, required: bool) -> Gate:
    name = "Ran in staging before production"
    if target_stage != "production":
        return Gate("staging_first", name, True, "Not applicable: this request targets staging.")
    if not required:
        return Gate("staging_first", name, True, "The model's policy does not require staging first.")
    if was_in_staging:
        return Gate("staging_first", name, True, "The version was approved to staging before.")
    return Gate("staging_first", name, False, "The version has never been in staging; promote it to staging first.")


def score_on_holdout(pipeline: Any, frame: pd.DataFrame, spec: TrainingSpec, classes: list[str]) -> dict[str, Any]:
    """Metrics (and confusion matrix) of ``pipeline`` on the holdout rows ``spec`` selects in ``frame``."""
    _, hold = holdout_split(frame, spec)
    y = _target_array(frame, spec)[hold]
    names = [f["name"] for f in spec.features]
    X = frame.iloc[hold]
    missing = [n for n in _pipeline_features(pipeline, names) if n not in X.columns]
    if missing:
        raise KeyError(f"the holdout data lacks columns {missing}")
    return score_model(pipeline, prepare_for(pipeline, X), y, task_type=spec.task_type, classes=classes)


def score_model(model: Any, X: pd.DataFrame, y: np.ndarray, *, task_type: str, classes: list[str]) -> dict[str, Any]:
    """Metrics (and confusion matrix) of ``model`` on rows ``X`` (as the model takes them) with truth ``y``.

    For classification ``y`` and the model's labels are text (``apps.ml.prepare.label_text``).
    """
    pred = model.predict(X)
    if task_type == "classification":
        labels = sorted(set(classes) | {str(v) for v in np.unique(y)})
        proba = M.aligned_proba(model, X, labels)
        return {
            "rows": len(X),
            "metrics": M.classification_metrics(y, pred, proba, labels),
            "confusion_matrix": M.confusion_matrix_chart(y, pred, labels),
        }
    return {"rows": len(X), "metrics": M.regression_metrics(y, pred)}


def _pipeline_features(pipeline: Any, default: list[str]) -> list[str]:
    names = getattr(pipeline, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else default
