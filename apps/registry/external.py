"""Registry workflows for models trained elsewhere and logged with the MLflow client: registered
models and versions created from the client, their tags and descriptions, free aliases, and the
admins' allow-list of trusted types. Stages still move only through promotion requests.

A version is judged deployable once, when it is registered, from files we hold and hashed
ourselves: its MLmodel (YAML, read safely) and its skops file (audited without loading).
"""

from __future__ import annotations

import functools
import re
import tempfile

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from apps.core import roles
from apps.core.services import audit_record
from apps.experiments.artifacts import artifact_chunks, artifact_read, artifacts_freeze
from apps.experiments.mlflow_runs import MAX_TAG_VALUE_LENGTH, AlreadyExists, _check_key, _check_value
from apps.experiments.models import ArtifactFile, LoggedModel, Run
from apps.experiments.services import default_primary_metric
from apps.ml import mlflow_model as mm
from apps.ml.errors import ArtifactError

from .loading import trusted_type_names
from .models import (
    RESERVED_ALIASES,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    TrustedType,
    VersionOrigin,
)
from .services import current_in_stage, default_policy

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ALIAS = re.compile(r"[\w\-]+")
MAX_TAGS = 1000


def _require_registering(user) -> None:
    roles.require(user, "register_model", message="Your role does not allow registering models (ML engineers do).")


# --- the allow-list (``loading.trusted_type_names`` reads it) ------------------------------------------


def trusted_type_add(*, user, name: str, note: str = "") -> TrustedType:
    if not (getattr(user, "is_staff", False) and user.is_active):
        raise PermissionDenied("Only admins change the allow-list of trusted types.")
    name = (name or "").strip()
    if not mm.is_allowable_type_name(name):
        raise ValidationError({"name": "Only scikit-learn, numpy and scipy types can be trusted "
                                       "(a dotted name starting with sklearn., numpy. or scipy.)."})
    with transaction.atomic():
        entry, created = TrustedType.objects.get_or_create(name=name, defaults={"note": note[:300], "added_by": user})
        if created:
            audit_record(actor=user, action="trusted_type.add", obj=entry, after={"name": name, "note": note})
    return entry


def trusted_type_remove(*, user, entry: TrustedType) -> None:
    if not (getattr(user, "is_staff", False) and user.is_active):
        raise PermissionDenied("Only admins change the allow-list of trusted types.")
    with transaction.atomic():
        audit_record(actor=user, action="trusted_type.remove", obj=entry, before={"name": entry.name})
        entry.delete()


# --- registered models ----------------------------------------------------------------------------------


def _checked_model_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or not MODEL_NAME.fullmatch(name):
        raise ValidationError({"name": "A model name has 1 to 100 letters, digits, '.', '_' or '-' and starts with "
                                       "a letter or digit: it is part of the prediction URL."})
    return name


def _checked_tags(tags: dict) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
    return {_check_key(k, "tag"): _check_value(v, "tag", MAX_TAG_VALUE_LENGTH) for k, v in tags.items()}


def model_by_name(name: str) -> RegisteredModel:
    model = RegisteredModel.objects.annotate(lname=Lower("name")).filter(lname=(name or "").strip().lower()).first()
    if model is None:
        raise RegisteredModel.DoesNotExist(f"Registered Model with name={name} not found")
    return model


def registered_model_create_external(*, user, name: str, description: str = "",
                                     tags: dict[str, str] | None = None) -> RegisteredModel:
    _require_registering(user)
    name = _checked_model_name(name)
    tags = _checked_tags(tags or {})
    if RegisteredModel.objects.annotate(lname=Lower("name")).filter(lname=name.lower()).exists():
        raise AlreadyExists(f"Registered Model (name={name}) already exists.")
    try:
        with transaction.atomic():
            # the task and the gate policy are settled by the first version and the admins
            model = RegisteredModel.objects.create(
                name=name, description=(description or "")[:10000], owner=user, task_type="", primary_metric="",
                threshold_metric="", threshold_value=0.0, tags=tags,
            )
            audit_record(actor=user, action="model.create", obj=model, after={"name": name, "origin": "mlflow"})
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={name}) already exists.") from None
    return model


def registered_model_update(*, user, model: RegisteredModel, description: str | None = None,
                            set_tags: dict[str, str] | None = None, delete_tag: str | None = None) -> RegisteredModel:
    _require_registering(user)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        before = {"description": model.description, "tags": model.tags}
        if description is not None:
            model.description = str(description)[:10000]
        tags = {**(model.tags or {}), **_checked_tags(set_tags or {})}
        if delete_tag is not None:
            tags.pop(delete_tag, None)
        model.tags = tags
        model.updated_at = timezone.now()
        model.save(update_fields=["description", "tags", "updated_at"])
        audit_record(actor=user, action="model.update", obj=model, before=before,
                     after={"description": model.description, "tags": model.tags})
    return model


def model_version_update(*, user, version: ModelVersion, description: str | None = None,
                         set_tags: dict[str, str] | None = None, delete_tag: str | None = None) -> ModelVersion:
    _require_registering(user)
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().get(pk=version.pk)
        before = {"description": version.description, "tags": version.tags}
        if description is not None:
            version.description = str(description)[:10000]
        tags = {**(version.tags or {}), **_checked_tags(set_tags or {})}
        if delete_tag is not None:
            tags.pop(delete_tag, None)
        version.tags = tags
        version.updated_at = timezone.now()
        version.save(update_fields=["description", "tags", "updated_at"])
        audit_record(actor=user, action="model_version.update", obj=version, before=before,
                     after={"description": version.description, "tags": version.tags})
    return version


# --- registering an external version ----------------------------------------------------------------


def _resolve_source(source: str, model_id: str, run_id: str) -> tuple[Run, LoggedModel | None, str]:
    """The run, logged model and artifact directory a version's ``source`` names."""
    logged = None
    source = (source or "").strip()
    if model_id or source.startswith("models:/m-"):
        wanted = model_id or source[len("models:/"):].strip("/")
        logged = LoggedModel.objects.select_related("source_run", "experiment").filter(model_id=wanted).first()
        if logged is None:
            raise LoggedModel.DoesNotExist(f"Logged model with ID '{wanted}' not found.")
        run, directory = logged.source_run, logged.artifact_root
    elif source.startswith("runs:/"):
        run_uuid, _, path = source[len("runs:/"):].partition("/")
        run = Run.objects.select_related("experiment").filter(uuid=run_uuid).first()
        if run is None:
            raise Run.DoesNotExist(f"Run with id={run_uuid} not found")
        directory = f"{run.artifact_root}/{path.strip('/')}" if path.strip("/") else run.artifact_root
    elif source.startswith("mlflow-artifacts:/"):
        from apps.experiments.artifacts import clean_artifact_path, owner_of

        directory = clean_artifact_path(source[len("mlflow-artifacts:/"):].lstrip("/"))
        owner = owner_of(directory)
        if owner is None:
            raise ValidationError({"source": f"No run or logged model of ours holds {source!r}."})
        logged, run = owner.logged_model, owner.run or owner.logged_model.source_run
    else:
        raise ValidationError({"source": "The source must be models:/<logged model id>, runs:/<run id>/<path> or "
                                         "an mlflow-artifacts:/ location of this server."})
    if run is None:
        raise ValidationError({"source": "The model was logged outside a run; log it inside mlflow.start_run() so "
                                         "its lineage is known."})
    if run_id and run_id != run.uuid:
        raise ValidationError({"run_id": f"The source belongs to run {run.uuid}, not {run_id}."})
    return run, logged, directory


@functools.lru_cache(maxsize=1)
def _estimator_kinds() -> dict[str, str]:
    from sklearn.utils import all_estimators

    kinds = {}
    for kind in ("classifier", "regressor"):
        for _, cls in all_estimators(type_filter=kind):
            kinds[f"{cls.__module__}.{cls.__name__}"] = "classification" if kind == "classifier" else "regression"
    return kinds


def _inspect(directory: str) -> dict:
    """Everything the registry records about an uploaded MLflow model directory, loading none of it."""
    files = {f.path[len(directory) + 1:]: f for f in ArtifactFile.objects.filter(path__startswith=directory + "/")}
    mlmodel = files.get("MLmodel")
    if mlmodel is None:
        raise ValidationError({"source": f"No MLmodel file under mlflow-artifacts:/{directory}; log the model with "
                                         "mlflow.sklearn.log_model."})
    try:
        info = mm.parse_mlmodel(artifact_read(mlmodel))
    except (ArtifactError, OSError) as exc:
        raise ValidationError({"source": f"The MLmodel file cannot be read: {exc}"}) from None
    record = files.get(info.model_file)
    untrusted, problem, estimator = None, "", ""
    if record is not None and info.serialization_format == "skops":
        untrusted, problem, estimator = _audit_skops(record)
    reasons = mm.deployability_reasons(info, untrusted_types=untrusted, allowed=trusted_type_names(),
                                       files=set(files), audit_problem=problem)
    return {"info": info, "record": record, "untrusted": untrusted or [], "estimator": estimator,
            "reasons": reasons, "task_type": _estimator_kinds().get(estimator, "")}


def _audit_skops(record: ArtifactFile) -> tuple[list[str] | None, str, str]:
    with tempfile.NamedTemporaryFile(suffix=".skops") as temp:
        try:
            for chunk in artifact_chunks(record):
                temp.write(chunk)
        except OSError:
            return None, "the model file does not match the sha256 recorded when it was uploaded", ""
        temp.flush()
        try:
            return mm.skops_untrusted_types(temp.name), "", mm.skops_estimator_class(temp.name)
        except ArtifactError as exc:
            return None, exc.message, ""


def external_version_register(*, user, model_name: str, source: str, model_id: str = "", run_id: str = "",
                              description: str = "", tags: dict[str, str] | None = None) -> ModelVersion:
    """A new version of ``model_name`` from files logged with the MLflow client, at stage None."""
    _require_registering(user)
    tags = _checked_tags(tags or {})
    model = model_by_name(model_name)
    run, logged, directory = _resolve_source(source, model_id, run_id)
    found = _inspect(directory)
    info, record, reasons = found["info"], found["record"], list(found["reasons"])
    task_type = found["task_type"]
    if model.task_type and task_type and task_type != model.task_type:
        reasons.append(f"{model.name} is a {model.task_type} model but this is a {task_type} estimator")
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        number = (model.versions.aggregate(n=Max("version"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            model=model, version=number, run=run, origin=VersionOrigin.MLFLOW, logged_model=logged,
            source_uri=source[:1000], storage_root=directory, model_file=info.model_file,
            artifact_name=record.storage_name if record else "", artifact_sha256=record.sha256 if record else "",
            signature=info.signature, signature_outputs=info.signature_outputs,
            metrics={k: v for k, v in (run.metrics or {}).items() if v is not None}, flavors=info.flavors,
            loader_module=info.loader_module, serialization_format=info.serialization_format,
            sklearn_version=info.sklearn_version, mlflow_version=info.mlflow_version,
            estimator_class=found["estimator"], untrusted_types=found["untrusted"],
            declared_trusted_types=info.declared_trusted_types, deployable=not reasons,
            not_deployable_reasons=reasons, description=(description or "")[:10000], tags=tags, created_by=user,
        )
        if not model.task_type and task_type:
            model.task_type = task_type
        if model.task_type and not model.primary_metric:
            # as for a model trained here: the task's default metric and gate policy (admins change them)
            model.primary_metric = default_primary_metric(model.task_type)
            for key, value in default_policy(model.task_type, model.primary_metric).items():
                setattr(model, key, value)
        model.updated_at = timezone.now()
        model.save(update_fields=["task_type", "primary_metric", "threshold_metric", "threshold_value", "updated_at"])
        artifacts_freeze(obj=logged or run)
        audit_record(actor=user, action="model_version.register", obj=version,
                     after={"origin": "mlflow", "source": source, "artifact_sha256": version.artifact_sha256,
                            "deployable": version.deployable, "reasons": reasons})
    return version


def version_by_number(model: RegisteredModel, version: str | int) -> ModelVersion:
    try:
        number = int(str(version).strip())
    except ValueError:
        raise ValidationError({"version": f"Model version must be an integer, got {str(version)[:40]!r}."}) from None
    found = model.versions.filter(version=number).first() if 0 < number < 2**31 else None
    if found is None:
        raise ModelVersion.DoesNotExist(f"Model Version (name={model.name}, version={version}) not found")
    return found


# --- aliases ---------------------------------------------------------------------------------------------


def how_to_promote(version: ModelVersion | None, model: RegisteredModel, base_url: str = "") -> str:
    where = (f"{base_url}{reverse('registry:version', args=[version.pk])}" if version
             else f"{base_url}{reverse('registry:model', args=[model.pk])}")
    api = f"{base_url}/api/v1/model-versions/{version.pk if version else '<id>'}/promotions/"
    return (f"Ask for a promotion on {where} (or POST {api} with target_stage and reason); an analyst other "
            "than you decides, after the gates.")


def reserved_alias_refusal(alias: str, model: RegisteredModel, version: ModelVersion | None,
                           base_url: str = "") -> PermissionDenied:
    return PermissionDenied(
        f"'{alias}' is a stage of {model.name}, moved only by an approved promotion request; nothing was changed. "
        + how_to_promote(version, model, base_url))


def _checked_alias(alias: str) -> str:
    if not isinstance(alias, str) or not alias or len(alias) > 255 or not ALIAS.fullmatch(alias):
        raise ValidationError({"alias": "An alias has 1 to 255 letters, digits, '_' or '-'."})
    if re.fullmatch(r"[vV]\d+", alias) or alias.lower() == "latest":
        raise ValidationError({"alias": f"'{alias}' is reserved by MLflow (v<number> and latest name versions)."})
    return alias


def model_alias_set(*, user, model: RegisteredModel, alias: str, version: ModelVersion, base_url: str = "") -> None:
    if alias.lower() in RESERVED_ALIASES:
        raise reserved_alias_refusal(alias, model, version, base_url)
    _require_registering(user)
    alias = _checked_alias(alias)
    with transaction.atomic():
        existing = ModelAlias.objects.select_for_update().filter(model=model, alias=alias).first()
        before = existing.version.version if existing else None
        ModelAlias.objects.update_or_create(model=model, alias=alias,
                                            defaults={"version": version, "set_by": user, "set_at": timezone.now()})
        audit_record(actor=user, action="model_alias.set", obj=version, before={"alias": alias, "version": before},
                     after={"alias": alias, "version": version.version})


def model_alias_delete(*, user, model: RegisteredModel, alias: str, base_url: str = "") -> None:
    if alias.lower() in RESERVED_ALIASES:
        raise reserved_alias_refusal(alias, model, current_in_stage(model, RESERVED_ALIASES[alias.lower()]), base_url)
    _require_registering(user)
    with transaction.atomic():
        existing = ModelAlias.objects.select_for_update().filter(model=model, alias=alias).first()
        if existing is not None:
            audit_record(actor=user, action="model_alias.delete", obj=existing.version,
                         before={"alias": alias, "version": existing.version.version})
            existing.delete()


def version_for_alias(model: RegisteredModel, alias: str) -> ModelVersion:
    """The version an alias names; ``staging`` and ``production`` name the current holder of the stage."""
    stage = RESERVED_ALIASES.get((alias or "").lower())
    found = current_in_stage(model, stage) if stage else (
        ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first())
    version = found if stage else (found.version if found else None)
    if version is None:
        raise ModelVersion.DoesNotExist(f"Registered model alias {alias} not found.")
    return version


def aliases_by_version(models: list[RegisteredModel]) -> dict[int, list[str]]:
    """version pk -> aliases (stage holders included), for a page of models in two queries."""
    out: dict[int, list[str]] = {}
    for pk, stage in ModelVersion.objects.filter(model__in=models, stage__in=list(RESERVED_ALIASES.values())
                                                 ).values_list("pk", "stage"):
        out.setdefault(pk, []).append(stage)
    for version_id, alias in ModelAlias.objects.filter(model__in=models).values_list("version_id", "alias"):
        out.setdefault(version_id, []).append(alias)
    return out
