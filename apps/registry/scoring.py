"""Scoring versions of either kind on the same rows, and the gates of a version trained elsewhere.

The gates of a version logged with the MLflow client judge what we measure, never what the client
logged: the challenger (and the champion, whichever kind it is) is scored on the rows of the
request's evaluation data. Those rows are the holdout split of that data when a catalog champion
was trained on it (so the champion is not scored on rows it learned from), else every row with a
target. The client's own logged metrics are kept in the evidence, beside ours, unused.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import sklearn

from apps.core.jobs import JobFailed
from apps.datasets.models import DatasetVersion
from apps.datasets.services import load_version_frame
from apps.ml import gates as G
from apps.ml.errors import MLError
from apps.ml.prepare import canonical_labels
from apps.ml.train import TrainingSpec, holdout_split

from .evaluation import training_input_of
from .loading import deployability_now, scorer_of
from .models import ModelVersion, PromotionRequest

SCORING_ERRORS = (KeyError, ValueError, TypeError, MLError, JobFailed, OSError)


def target_values(series: pd.Series, task_type: str) -> np.ndarray:
    if task_type == "classification":
        return canonical_labels(series)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def score_on(version: ModelVersion, rows: pd.DataFrame, y: np.ndarray, task_type: str) -> dict:
    """``version``'s metrics on ``rows`` (raw data; each kind of model gets them as it takes them)."""
    scorer = scorer_of(version)
    return G.score_model(scorer.model, scorer.prepare(rows), y, task_type=task_type, classes=scorer.classes)


def evaluation_rows(data: DatasetVersion, target: str, task_type: str,
                    champion: ModelVersion | None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The rows of ``data`` both models are scored on, their truth, and which rows they are, in words."""
    try:
        frame = load_version_frame(data)
    except FileNotFoundError:
        raise JobFailed(f"The file of {data} is missing from storage.") from None
    if target not in frame.columns:
        raise MLError(f"{data} has no column {target!r}")
    if champion is not None and not champion.is_external and champion.run.dataset_version_id == data.pk \
            and champion.run.experiment.target == target:
        _, hold = holdout_split(frame, TrainingSpec.from_dict(champion.run.spec))
        rows = frame.iloc[hold]
        how = f"the {len(rows)} holdout rows of {data} that the champion {champion} was not trained on"
    else:
        rows = frame[frame[target].notna()]
        how = f"the {len(rows)} rows of {data} that have a {target}"
    if len(rows) < 2:
        raise MLError(f"{data} has fewer than 2 rows with a {target}")
    return rows, target_values(rows[target], task_type), how


def sklearn_note(version: ModelVersion) -> dict:
    ours, theirs = sklearn.__version__, version.sklearn_version
    differs = bool(theirs) and theirs != ours
    text = (f"{version} was trained with scikit-learn {theirs}; we run {ours}, so its predictions here may differ "
            "slightly from the notebook's." if differs else "")
    return {"model": theirs, "ours": ours, "differs": differs, "note": text}


def _deployable_gate(version: ModelVersion) -> G.Gate:
    reasons = deployability_now(version)
    name = "Loads here with skops and our allow-list (no pickle, no code of its own)"
    if reasons:
        return G.Gate("deployable", name, False, "Not deployable: " + "; ".join(reasons) + ".")
    return G.Gate("deployable", name, True, f"{version.serialization_format} file, sha256 checked; every type it "
                                            "needs is on our allow-list.")


def _scored_challenger(promotion: PromotionRequest, task_type: str, progress: Callable) -> tuple[list, dict]:
    """The threshold and champion gates, on the evaluation rows, with their evidence."""
    version, model, champion = promotion.model_version, promotion.model_version.model, promotion.champion
    data, target = promotion.evaluation_dataset_version, promotion.evaluation_target
    note = sklearn_note(version)
    threshold_name = f"{model.threshold_metric} meets the model's threshold on the evaluation data"
    try:
        rows, y, how = evaluation_rows(data, target, task_type, champion)
        progress(30, f"Scoring {version} on {how}")
        ours = score_on(version, rows, y, task_type)
    except SCORING_ERRORS as exc:
        reason = f"Could not score {version} on {data}: {getattr(exc, 'message', exc)}"
        return ([G.Gate("threshold", threshold_name, False, reason), G.Gate(
            "champion", "Not worse than the current champion on the same rows", False, reason)], {})
    threshold = G.gate_threshold(ours["metrics"], metric=model.threshold_metric, threshold=model.threshold_value)
    detail = threshold.detail.replace("Holdout", "Measured here on the evaluation data:", 1)
    gates = [G.Gate("threshold", threshold.name, threshold.passed, f"{detail} {note['note']}".strip())]
    evidence = {"same_holdout": None, "rows_how": how, "challenger": ours}
    if champion is None:
        gates.append(G.gate_champion(metric=model.primary_metric, challenger=None, champion=None,
                                     margin=model.max_regression, champion_label=None))
        return gates, evidence
    progress(55, f"Scoring the champion {champion} on the same rows")
    try:
        theirs = score_on(champion, rows, y, task_type)
    except SCORING_ERRORS as exc:
        gates.append(G.Gate("champion", "Not worse than the current champion on the same rows", False,
                            f"Could not score {champion} on the same rows: {getattr(exc, 'message', exc)}"))
        return gates, evidence
    evidence.update(same_holdout={"dataset_version": data.pk, "rows": ours["rows"], "challenger": ours,
                                  "champion": theirs},
                    champion={"label": str(champion), "metrics": champion.metrics,
                              "confusion_matrix": theirs.get("confusion_matrix")})
    gates.append(G.gate_champion(
        metric=model.primary_metric, challenger=ours["metrics"].get(model.primary_metric),
        champion=theirs["metrics"].get(model.primary_metric), margin=model.max_regression,
        champion_label=str(champion), rows=ours["rows"]))
    return gates, evidence


def external_gates(promotion: PromotionRequest, progress: Callable[[int, str], None]) -> tuple[list, dict]:
    """Every gate but staging-first for a version logged with the MLflow client, with the evidence."""
    version, champion = promotion.model_version, promotion.champion
    data = promotion.evaluation_dataset_version
    task_type = version.model.task_type or "classification"
    progress(5, "Checking that the model loads here")
    gates = [_deployable_gate(version)]
    scored_gates, scored = _scored_challenger(promotion, task_type, progress)
    gates += scored_gates
    progress(75, "Checking the signature and the data")
    gates.append(G.gate_signature(version.signature, champion.signature if champion else None,
                                  str(champion) if champion else None))
    training = training_input_of(version.run)
    judged = training.dataset_version if training else data
    subject = "Training data (logged with mlflow.log_input)" if training else (
        "Evaluation data (the run logged no training data of ours)")
    gates.append(G.gate_validation(status=judged.validation_status, overridden=judged.is_overridden,
                                   version_label=str(judged), override_note=judged.override_reason, subject=subject))
    ours = scored.get("challenger") or {}
    evidence = {
        "challenger": {"label": str(version), "metrics": ours.get("metrics", {}), "logged_metrics": version.metrics,
                       "confusion_matrix": ours.get("confusion_matrix")},
        "evaluation": {"dataset_version": data.pk, "label": str(data), "target": promotion.evaluation_target,
                       "target_how": promotion.evaluation_target_how, "rows_how": scored.get("rows_how", "")},
        "sklearn": sklearn_note(version),
        "validation": {"dataset_version": judged.pk, "label": str(judged), "status": judged.validation_status,
                       "overridden": judged.is_overridden, "results": (judged.validation or {}).get("results", [])},
    }
    if scored.get("same_holdout"):
        evidence["same_holdout"] = scored["same_holdout"]
        evidence["champion"] = scored["champion"]
    return gates, evidence
