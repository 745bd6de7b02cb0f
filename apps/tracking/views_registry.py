"""The model registry half of the protocol. Versions are ours: stage None when registered, status
always READY, stages moved only by promotion requests (reserved aliases and stage transitions
answer PERMISSION_DENIED with the way to ask)."""

from __future__ import annotations

from django.db.models import Q

from apps.experiments import search
from apps.experiments.search import paginate
from apps.registry import external as svc
from apps.registry.models import ModelVersion, RegisteredModel

from .errors import MlflowError
from .protocol import handler_for, invalid
from .serialize import download_uri, model_version_json, registered_model_json
from .views_runs import TAG, page_size

MAX_PAGE = 1000


def _base_url(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _model(name: str | None) -> RegisteredModel:
    if not name:
        raise invalid("Missing value for required parameter 'name'.")
    return svc.model_by_name(name)


def _version(message: dict) -> ModelVersion:
    model = _model(message.get("name"))
    if not message.get("version"):
        raise invalid("Missing value for required parameter 'version'.")
    return _with_relations(svc.version_by_number(model, message["version"]))


def _with_relations(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_related("model", "run", "created_by", "logged_model").get(pk=version.pk)


def _version_json(version: ModelVersion) -> dict:
    aliases = svc.aliases_by_version([version.model]).get(version.pk, [])
    return model_version_json(version, aliases)


def _model_json(model: RegisteredModel) -> dict:
    versions = list(model.versions.select_related("model", "run", "created_by", "logged_model"))
    return registered_model_json(model, versions, svc.aliases_by_version([model]))


# --- registered models ------------------------------------------------------------------------------------


@handler_for({"name": "string", "tags": [TAG], "description": "string"})
def create_registered_model(user, message, **_):
    model = svc.registered_model_create_external(
        user=user, name=message.get("name", ""), description=message.get("description", ""),
        tags={t.get("key"): t.get("value") for t in message.get("tags", [])})
    return {"registered_model": _model_json(model)}


@handler_for({"name": "string"})
def get_registered_model(user, message, **_):
    return {"registered_model": _model_json(_model(message.get("name")))}


@handler_for({"name": "string", "description": "string"})
def update_registered_model(user, message, **_):
    model = svc.registered_model_update(user=user, model=_model(message.get("name")),
                                        description=message.get("description"))
    return {"registered_model": _model_json(model)}


@handler_for({"name": "string", "key": "string", "value": "string"})
def set_registered_model_tag(user, message, **_):
    if "key" not in message or "value" not in message:
        raise invalid("Missing value for required parameter 'key' or 'value'.")
    svc.registered_model_update(user=user, model=_model(message.get("name")),
                                set_tags={message["key"]: message["value"]})
    return {}


@handler_for({"name": "string", "key": "string"})
def delete_registered_model_tag(user, message, **_):
    svc.registered_model_update(user=user, model=_model(message.get("name")), delete_tag=message.get("key", ""))
    return {}


@handler_for({"name": "string", "new_name": "string"})
def rename_registered_model(user, message, **_):
    _model(message.get("name"))
    raise invalid("Registered models cannot be renamed here: the name is part of their prediction URL.")


def _kept(what: str):
    @handler_for({"name": "string", "version": "string"})
    def handle(user, message, **_):
        _model(message.get("name"))
        raise MlflowError("PERMISSION_DENIED", f"{what} are kept for the audit trail; archive a version through a "
                                               "promotion instead.")

    return handle


delete_registered_model = _kept("Registered models")
delete_model_version = _kept("Model versions")


def _model_filter(models, clauses):
    for index, clause in enumerate(clauses):
        if clause.entity == "attributes" and clause.key == "name":
            models = models.filter(search.string_q("name", clause.op, clause.value))
        elif clause.entity == "tags":
            name = f"_t{index}"
            models = models.annotate(**{name: search.json_text("tags", clause.key)})
            q = search.string_q(name, clause.op, clause.value)
            if clause.op in ("!=", "NOT IN"):  # a model without the tag is not equal to anything
                q = q | Q(**{f"{name}__isnull": True})
            models = models.filter(q)
        else:
            raise invalid(f"Registered models filter on name or tags, not {clause.entity}.{clause.key}.")
    return models


@handler_for({"filter": "string", "max_results": "int64", "order_by": ["string"], "page_token": "string"})
def search_registered_models(user, message, **_):
    size = page_size(message.get("max_results"), 100, MAX_PAGE)
    models = _model_filter(RegisteredModel.objects.select_related("owner"),
                           search.parse_filter(message.get("filter"), default_entity="attributes"))
    rows, token = paginate(models.order_by("name"), token=message.get("page_token"), size=size)
    versions = list(ModelVersion.objects.filter(model__in=rows).select_related("model", "run", "created_by",
                                                                                "logged_model"))
    aliases = svc.aliases_by_version(rows)
    body = {"registered_models": [registered_model_json(m, [v for v in versions if v.model_id == m.pk], aliases)
                                  for m in rows]}
    if token:
        body["next_page_token"] = token
    return body


@handler_for({"name": "string", "stages": ["string"]})
def get_latest_versions(user, message, **_):
    model = _model(message.get("name"))
    wanted = {s.lower() for s in message.get("stages", [])}
    found = _model_json(model)["latest_versions"]
    return {"model_versions": [v for v in found if not wanted or v["current_stage"].lower() in wanted]}


# --- model versions ---------------------------------------------------------------------------------------


@handler_for({"name": "string", "source": "string", "run_id": "string", "tags": [TAG], "run_link": "string",
              "description": "string", "model_id": "string"})
def create_model_version(user, message, **_):
    version = svc.external_version_register(
        user=user, model_name=message.get("name", ""), source=message.get("source", ""),
        model_id=message.get("model_id", ""), run_id=message.get("run_id", ""),
        description=message.get("description", ""), tags={t.get("key"): t.get("value") for t in message.get("tags", [])})
    return {"model_version": _version_json(_with_relations(version))}


@handler_for({"name": "string", "version": "string"})
def get_model_version(user, message, **_):
    return {"model_version": _version_json(_version(message))}


@handler_for({"name": "string", "version": "string", "description": "string"})
def update_model_version(user, message, **_):
    version = svc.model_version_update(user=user, version=_version(message), description=message.get("description"))
    return {"model_version": _version_json(_with_relations(version))}


@handler_for({"name": "string", "version": "string", "key": "string", "value": "string"})
def set_model_version_tag(user, message, **_):
    if "key" not in message or "value" not in message:
        raise invalid("Missing value for required parameter 'key' or 'value'.")
    svc.model_version_update(user=user, version=_version(message), set_tags={message["key"]: message["value"]})
    return {}


@handler_for({"name": "string", "version": "string", "key": "string"})
def delete_model_version_tag(user, message, **_):
    svc.model_version_update(user=user, version=_version(message), delete_tag=message.get("key", ""))
    return {}


@handler_for({"name": "string", "version": "string", "stage": "string", "archive_existing_versions": "bool"})
def transition_model_version_stage(user, message, request, **_):
    version = _version(message)
    raise MlflowError("PERMISSION_DENIED", (
        f"Stages of {version.model.name} change only through promotion requests, gates and an analyst's "
        f"approval; nothing was changed. " + svc.how_to_promote(version, version.model, _base_url(request))))


@handler_for({"name": "string", "version": "string"})
def get_model_version_download_uri(user, message, **_):
    return {"artifact_uri": download_uri(_version(message))}


VERSION_STRINGS = {"name": "model__name", "run_id": "run__uuid", "source_path": "source_uri"}


def _version_filter(versions, clauses):
    for index, clause in enumerate(clauses):
        if clause.entity == "attributes" and clause.key in VERSION_STRINGS:
            if isinstance(clause.value, float):
                raise invalid(f"{clause.key} compares with a quoted string.")
            versions = versions.filter(search.string_q(VERSION_STRINGS[clause.key], clause.op, clause.value))
        elif clause.entity == "attributes" and clause.key in ("version_number", "version"):
            if not isinstance(clause.value, float):
                raise invalid("version_number compares with a number.")
            versions = versions.filter(search.number_q("version", clause.op, clause.value))
        elif clause.entity == "tags":
            name = f"_t{index}"
            versions = versions.annotate(**{name: search.json_text("tags", clause.key)})
            q = search.string_q(name, clause.op, clause.value)
            if clause.op in ("!=", "NOT IN"):
                q = q | Q(**{f"{name}__isnull": True})
            versions = versions.filter(q)
        else:
            raise invalid(f"Model versions filter on name, run_id, source_path, version_number or tags, "
                          f"not {clause.entity}.{clause.key}.")
    return versions


@handler_for({"filter": "string", "max_results": "int64", "order_by": ["string"], "page_token": "string"})
def search_model_versions(user, message, **_):
    size = page_size(message.get("max_results"), 1000, MAX_PAGE)
    versions = _version_filter(ModelVersion.objects.select_related("model", "run", "created_by", "logged_model"),
                               search.parse_filter(message.get("filter"), default_entity="attributes"))
    rows, token = paginate(versions.order_by("model__name", "-version"), token=message.get("page_token"), size=size)
    aliases = svc.aliases_by_version(list({v.model for v in rows}))
    body = {"model_versions": [model_version_json(v, aliases.get(v.pk)) for v in rows]}
    if token:
        body["next_page_token"] = token
    return body


# --- aliases -----------------------------------------------------------------------------------------------


@handler_for({"name": "string", "alias": "string", "version": "string"})
def set_alias(user, message, request, **_):
    model = _model(message.get("name"))
    alias = message.get("alias") or ""
    from apps.registry.models import RESERVED_ALIASES

    if alias.lower() in RESERVED_ALIASES:  # refused before the version is even looked up
        version = svc.version_by_number(model, message["version"]) if message.get("version") else None
        raise svc.reserved_alias_refusal(alias, model, version, _base_url(request))
    svc.model_alias_set(user=user, model=model, alias=alias, version=_version(message),
                        base_url=_base_url(request))
    return {}


@handler_for({"name": "string", "alias": "string"})
def delete_alias(user, message, request, **_):
    svc.model_alias_delete(user=user, model=_model(message.get("name")), alias=message.get("alias") or "",
                           base_url=_base_url(request))
    return {}


@handler_for({"name": "string", "alias": "string"})
def get_alias(user, message, **_):
    model = _model(message.get("name"))
    if not message.get("alias"):
        raise invalid("Missing value for required parameter 'alias'.")
    return {"model_version": _version_json(_with_relations(svc.version_for_alias(model, message["alias"])))}
