"""The evaluation data of a version trained elsewhere: proposed, checked, and what it is scored on.

A model logged with the MLflow client learned from data we never saw split, so its gates need a
dataset version of ours that it did not learn from, holding its signature's columns and a target.
The promotion request names it, or it is proposed from what the run logged with
``mlflow.log_input`` (an input whose context says evaluation, linked to one of our versions), or
from an earlier request for the same version. The run's own training data is refused.

The target column is the one named with the request; else it is inferred, in this order:

1. the one column the run's logged training data has beyond the signature (a training frame
   logged with ``mlflow.data.from_pandas`` holds the features and the target);
2. the dataset's default target, when it is not a feature;
3. the one column of the evaluation data beyond the signature;
4. the target of the champion's experiment, when the champion was trained here.

Otherwise the request is refused, naming the candidate columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError

from apps.datasets.models import DatasetVersion, VersionStatus
from apps.experiments.models import Run, RunInput

from .models import ModelVersion, PromotionRequest

EVALUATION_CONTEXTS = frozenset({"eval", "evaluation", "validation", "valid", "test", "testing", "holdout"})
DATA_FIELD = "evaluation_dataset_version"
TARGET_FIELD = "evaluation_target"
# colspec type -> the dtype kinds (numpy's letter codes) of our data's columns it can be read from
TARGET_MAX_LENGTH = PromotionRequest._meta.get_field("evaluation_target").max_length
HOW_MAX_LENGTH = PromotionRequest._meta.get_field("evaluation_target_how").max_length
COMPATIBLE_KINDS = {"long": "iu", "integer": "iu", "double": "iuf", "float": "iuf", "boolean": "b"}


def is_evaluation_context(context: str) -> bool:
    return (context or "").strip().lower() in EVALUATION_CONTEXTS


def linked_inputs(run: Run) -> list[RunInput]:
    """The datasets the run logged that name one of our dataset versions."""
    return [i for i in run.inputs.select_related("dataset_version__dataset") if i.dataset_version_id]


def training_input_of(run: Run) -> RunInput | None:
    """The logged dataset that was the run's training data (an input without an evaluation context)."""
    return next((i for i in linked_inputs(run) if not is_evaluation_context(i.context)), None)


def proposed_evaluation(version: ModelVersion) -> tuple[DatasetVersion | None, str]:
    """The evaluation data to propose for ``version``, and why."""
    for logged in linked_inputs(version.run):
        if is_evaluation_context(logged.context):
            return logged.dataset_version, (f"the run logged it with mlflow.log_input as {logged.name!r} "
                                            f"(context {logged.context!r})")
    earlier = (PromotionRequest.objects.filter(model_version=version, evaluation_dataset_version__isnull=False)
               .select_related("evaluation_dataset_version__dataset").order_by("-created_at").first())
    if earlier is not None:
        return earlier.evaluation_dataset_version, f"request #{earlier.pk} for this version was evaluated on it"
    return None, ""


@dataclass(frozen=True)
class Evaluation:
    dataset_version: DatasetVersion
    target: str
    target_how: str
    proposed: str = ""  # why it was proposed, when the request named none


def _invalid(field: str, message: str) -> ValidationError:
    return ValidationError({field: message})


def _named_version(raw) -> DatasetVersion:
    try:
        pk = int(str(raw).strip())
    except ValueError:
        raise _invalid(DATA_FIELD, f"{str(raw)[:40]!r} is not a dataset version id (a number).") from None
    found = DatasetVersion.objects.select_related("dataset").filter(pk=pk).first() if 0 < pk < 2**63 else None
    if found is None:
        raise _invalid(DATA_FIELD, f"There is no dataset version #{pk}.")
    return found


def _chosen_version(version: ModelVersion, raw) -> tuple[DatasetVersion, str]:
    if raw not in (None, ""):
        return _named_version(raw), ""
    proposed, why = proposed_evaluation(version)
    if proposed is None:
        raise _invalid(DATA_FIELD, (
            f"{version} was trained elsewhere, so its gates need an evaluation dataset version of ours that it did "
            f"not learn from, holding its features ({', '.join(version.feature_names[:20])}) and the target. None "
            "was named and none can be proposed: its run logged no evaluation data linked to one of our dataset "
            "versions (mlflow.log_input(dataset, context=\"evaluation\") with the version's URL as source). "
            "Upload the data and name its version."))
    return proposed, why


def training_inputs_of(run: Run) -> list[RunInput]:
    """Every linked dataset the run logged as training data (not with an evaluation context)."""
    return [i for i in linked_inputs(run) if not is_evaluation_context(i.context)]


def _check_usable(version: ModelVersion, data: DatasetVersion) -> None:
    if data.status != VersionStatus.READY or not data.was_read:
        raise _invalid(DATA_FIELD, f"{data} is {data.get_status_display().lower()}: only a version that was read "
                                   "and profiled can evaluate a model.")
    if not data.usable_for_training:
        raise _invalid(DATA_FIELD, f"{data} failed its validation rules: gates judged on it would mean nothing "
                                   "until an ML engineer overrides the validation with a reason.")
    for training in training_inputs_of(version.run):
        # the same bytes under another dataset are the same rows: compare contents, not ids
        if training.dataset_version_id == data.pk or training.dataset_version.sha256 == data.sha256:
            raise _invalid(DATA_FIELD, f"{data} holds the data the run of {version} logged as its training input "
                                       f"({training.name[:80]!r}): the gates need data the model did not learn from.")
    missing = [n for n in version.feature_names if data.column(n) is None]
    if missing:
        raise _invalid(DATA_FIELD, f"{data} lacks the model's feature columns {', '.join(missing[:20])}.")
    mismatched = []
    for feature in version.signature:
        column, kinds = data.column(feature["name"]), COMPATIBLE_KINDS.get(str(feature.get("dtype")))
        if kinds is None:
            continue  # string columns take any values as text
        if _dtype_kind(column["dtype"]) not in kinds or (feature["dtype"] in ("long", "integer", "boolean")
                                                         and column.get("nullable")):
            mismatched.append(f"{feature['name']} ({feature['dtype']} in the signature, {column['dtype']}"
                              f"{' with missing values' if column.get('nullable') else ''} in {data})")
    if mismatched:
        raise _invalid(DATA_FIELD, f"{data} has columns the model cannot take: {'; '.join(mismatched[:10])}.")


def _dtype_kind(dtype: str) -> str:
    import numpy as np

    try:
        return np.dtype(dtype).kind
    except TypeError:
        return "O"  # pandas' own dtypes (str, category) are text


def _checked_target(version: ModelVersion, data: DatasetVersion, target: str) -> str:
    if len(target) > TARGET_MAX_LENGTH:
        raise _invalid(TARGET_FIELD, f"A target column name is at most {TARGET_MAX_LENGTH} characters; "
                                     f"{target[:40]!r}… has {len(target)}.")
    column = data.column(target)
    if column is None:
        raise _invalid(TARGET_FIELD, f"{data} has no column {target[:80]!r}.")
    if target in version.feature_names:
        raise _invalid(TARGET_FIELD, f"{target!r} is one of the model's features, not its target.")
    if version.model.task_type == "regression" and _dtype_kind(column["dtype"]) not in "iuf":
        raise _invalid(TARGET_FIELD, f"{version.model.name} is a regression model but {target!r} in {data} is "
                                     f"{column['dtype']}, not numeric.")
    return target


def _inferred_target(version: ModelVersion, data: DatasetVersion, champion: ModelVersion | None) -> tuple[str, str]:
    features = set(version.feature_names)
    beyond = [n for n in data.column_names if n not in features]
    training = training_input_of(version.run)
    if training is not None:
        logged = [c.get("name") for c in training.schema_columns() if c.get("name") not in features]
        if len(logged) == 1 and logged[0] in beyond:
            return logged[0], (f"inferred: the one column the run's logged training data {training.name!r} has "
                               "beyond the model's signature")
    default = data.dataset.default_target
    if default and default in beyond:
        return default, f"inferred: the default target of the dataset {data.dataset.name}"
    if len(beyond) == 1:
        return beyond[0], f"inferred: the only column of {data} beyond the model's signature"
    if champion is not None and not champion.is_external and champion.run.experiment.target in beyond:
        return champion.run.experiment.target, f"inferred: the target of the champion {champion}'s experiment"
    shown = ", ".join(beyond[:20]) or "none"
    raise _invalid(TARGET_FIELD, f"Name the target column of {data} (evaluation_target): it cannot be inferred from "
                                 f"its columns beyond the model's signature ({shown}).")


def evaluation_resolve(*, version: ModelVersion, dataset_version=None, target: str = "",
                       champion: ModelVersion | None = None) -> Evaluation:
    """The evaluation data and target of a request for ``version``; a ValidationError naming the field
    (``evaluation_dataset_version`` or ``evaluation_target``) when there is no usable one."""
    data, proposed = _chosen_version(version, dataset_version)
    _check_usable(version, data)
    target = (target or "").strip()
    if target:
        return Evaluation(data, _checked_target(version, data, target), "named with the request", proposed)
    inferred, how = _inferred_target(version, data, champion)
    return Evaluation(data, _checked_target(version, data, inferred), _fitted(how, HOW_MAX_LENGTH), proposed)


def _fitted(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


CHOICES_SCANNED = 300
CHOICES_SHOWN = 50


def evaluation_choices(version: ModelVersion) -> list[DatasetVersion]:
    """Dataset versions the form offers as evaluation data: read, holding the features, not the training data
    (the newest first; one query)."""
    trained_on = training_inputs_of(version.run)
    names = set(version.feature_names)
    candidates = (DatasetVersion.objects.filter(status=VersionStatus.READY).exclude(schema=[])
                  .exclude(pk__in=[i.dataset_version_id for i in trained_on])
                  .exclude(sha256__in=[i.dataset_version.sha256 for i in trained_on])
                  .select_related("dataset").only("id", "number", "schema", "dataset__name")
                  .order_by("-created_at", "-id")[:CHOICES_SCANNED])
    return [d for d in candidates if names <= set(d.column_names)][:CHOICES_SHOWN]


def latest_evaluation_of(version: ModelVersion) -> PromotionRequest | None:
    """The request whose evaluation data last judged ``version``: the latest approved one, else the latest."""
    requests = (PromotionRequest.objects.filter(model_version=version, evaluation_dataset_version__isnull=False)
                .select_related("evaluation_dataset_version__dataset"))
    return (requests.filter(status="approved").order_by("-decided_at", "-pk").first()
            or requests.order_by("-created_at", "-pk").first())
