"""MLflow 3 logged models: create, get, finalize, tags, params, delete, search."""

from __future__ import annotations

from apps.experiments import logged_models as svc
from apps.experiments import search
from apps.experiments.models import Lifecycle, LoggedModel, Run
from apps.experiments.search import paginate

from .errors import MlflowError
from .protocol import handler_for, invalid
from .serialize import logged_model_json
from .views_runs import TAG, experiment_by_id, page_size

STATUSES = ("LOGGED_MODEL_STATUS_UNSPECIFIED", "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY",
            "LOGGED_MODEL_UPLOAD_FAILED")
MAX_PAGE = 100
# attribute -> (field, kind) for search filters
ATTRIBUTES = {"name": ("name", str), "model_id": ("model_id", str), "status": ("status", str),
              "model_type": ("model_type", str), "source_run_id": ("source_run__uuid", str),
              "creation_timestamp": ("created_ms", float), "creation_time": ("created_ms", float),
              "last_updated_timestamp": ("updated_ms", float)}


def logged_model_by_id(model_id: str | None) -> LoggedModel:
    found = LoggedModel.objects.select_related("experiment", "source_run").filter(
        model_id=(model_id or "")[:40]).first() if model_id else None
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.")
    return found


@handler_for({"experiment_id": "string", "name": "string", "model_type": "string", "source_run_id": "string",
              "params": [TAG], "tags": [TAG]})
def create_logged_model(user, message, **_):
    experiment = experiment_by_id(message.get("experiment_id"))
    run = None
    if message.get("source_run_id"):
        run = Run.objects.filter(uuid=message["source_run_id"][:40]).first()
        if run is None:
            raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"Run with id={message['source_run_id']} not found")
    model = svc.logged_model_create(user=user, experiment=experiment, name=message.get("name", ""),
                                    model_type=message.get("model_type", ""), source_run=run,
                                    params=message.get("params", []), tags=message.get("tags", []))
    return {"model": logged_model_json(logged_model_by_id(model.model_id))}


@handler_for({})
def get_logged_model(user, message, model_id: str, **_):
    return {"model": logged_model_json(logged_model_by_id(model_id))}


@handler_for({"model_id": "string", "status": STATUSES})
def finalize_logged_model(user, message, model_id: str, **_):
    model = svc.logged_model_finalize(user=user, model=logged_model_by_id(model_id),
                                      status=message.get("status", ""))
    return {"model": logged_model_json(logged_model_by_id(model.model_id))}


@handler_for({})
def delete_logged_model(user, message, model_id: str, **_):
    svc.logged_model_delete(user=user, model=logged_model_by_id(model_id))
    return {}


@handler_for({"model_id": "string", "tags": [TAG]})
def set_logged_model_tags(user, message, model_id: str, **_):
    svc.logged_model_set_tags(user=user, model=logged_model_by_id(model_id), tags=message.get("tags", []))
    return {}


@handler_for({})
def delete_logged_model_tag(user, message, model_id: str, tag_key: str, **_):
    svc.logged_model_set_tags(user=user, model=logged_model_by_id(model_id), delete=tag_key)
    return {}


@handler_for({"model_id": "string", "params": [TAG]})
def log_logged_model_params(user, message, model_id: str, **_):
    svc.logged_model_log_params(user=user, model=logged_model_by_id(model_id), params=message.get("params", []))
    return {}


def _filtered(models, clauses):
    for index, clause in enumerate(clauses):
        name = f"_f{index}"
        if clause.entity in ("params", "tags"):
            models = models.annotate(**{name: search.json_text(clause.entity, clause.key)})
            models = models.filter(search.string_q(name, clause.op, clause.value))
            continue
        field, kind = ATTRIBUTES.get(clause.key, (None, None)) if clause.entity == "attributes" else (None, None)
        if field is None:
            raise invalid(f"Logged models filter on {', '.join(ATTRIBUTES)}, params or tags, "
                          f"not {clause.entity}.{clause.key}.")
        if kind is float:
            if not isinstance(clause.value, float):
                raise invalid(f"{clause.key} compares with a number.")
            models = models.filter(search.number_q(field, clause.op, clause.value))
        else:
            if isinstance(clause.value, float) or clause.op not in search.STRING_OPS:
                raise invalid(f"{clause.key} compares with =, !=, LIKE, ILIKE or IN and a quoted string.")
            models = models.filter(search.string_q(field, clause.op, clause.value))
    return models


@handler_for({"experiment_ids": ["string"], "filter": "string", "max_results": "int32",
              "order_by": [{"field_name": "string", "ascending": "bool"}], "page_token": "string",
              "datasets": [{"dataset_name": "string", "dataset_digest": "string"}]})
def search_logged_models(user, message, **_):
    experiments = [experiment_by_id(i) for i in (message.get("experiment_ids") or [])[:100]]
    if not experiments:
        raise invalid("search_logged_models needs at least one experiment id.")
    size = page_size(message.get("max_results"), MAX_PAGE, MAX_PAGE)
    models = LoggedModel.objects.filter(experiment__in=experiments, lifecycle_stage=Lifecycle.ACTIVE)
    models = _filtered(models, search.parse_filter(message.get("filter"), default_entity="attributes"))
    order = []
    for item in message.get("order_by", []):
        field = ATTRIBUTES.get(item.get("field_name", ""), (None,))[0]
        if field is None:
            raise invalid(f"Cannot order logged models by {item.get('field_name')!r}.")
        order.append(field if item.get("ascending", True) else f"-{field}")
    models = models.select_related("experiment", "source_run").order_by(*order, "-created_ms", "-id")
    rows, token = paginate(models, token=message.get("page_token"), size=size)
    body = {"models": [logged_model_json(m) for m in rows]}
    if token:
        body["next_page_token"] = token
    return body
