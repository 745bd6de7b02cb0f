from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from apps.core import charts as core_charts
from apps.core import roles
from apps.core.api_errors import Conflict
from apps.core.messages import error_text
from apps.core.pagination import page_from_request
from apps.core.views import require_viewer
from apps.experiments.charts import confusion
from apps.experiments.models import Run
from apps.ml.metrics import METRICS

from .models import ModelVersion, PromotionRequest, PromotionStatus, RegisteredModel, Stage, StageTransition
from .services import (
    model_version_register,
    production_at,
    promotion_approve,
    promotion_reject,
    promotion_request,
)

MODELS_PER_PAGE = 50
VERSIONS_PER_PAGE = 50
CHART_VERSIONS = 200
HISTORY_ROWS = 50
PROMOTIONS_PER_PAGE = 50


def model_list(request):
    require_viewer(request)
    versions = ModelVersion.objects.filter(model=OuterRef("pk")).order_by().values("model")
    models = RegisteredModel.objects.annotate(
        # counted for the page's models only, not grouped over every version of every model
        version_count=Coalesce(Subquery(versions.annotate(n=Count("*")).values("n")), 0),
    ).order_by("name")
    page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    live = ModelVersion.objects.filter(model__in=[m.pk for m in page.object_list],
                                       stage__in=[Stage.PRODUCTION, Stage.STAGING]).select_related("model")
    by_model: dict[int, dict] = {}
    for v in live:
        by_model.setdefault(v.model_id, {})[v.stage] = v
    rows = [{"model": m, "production": by_model.get(m.pk, {}).get(Stage.PRODUCTION),
             "staging": by_model.get(m.pk, {}).get(Stage.STAGING)} for m in page.object_list]
    return render(request, "registry/list.html", {"rows": rows, "page": page})


def _versions_chart(model: RegisteredModel) -> dict | None:
    """The primary metric of the newest versions, read as two columns (not the versions' JSON)."""
    metric = model.primary_metric
    points = list(model.versions.order_by("-version").values_list("version", KeyTransform(metric, "metrics"))
                  [:CHART_VERSIONS])[::-1]
    if not points:
        return None
    label = METRICS.get(metric, {}).get("label", metric)
    newest = f", the newest {CHART_VERSIONS}" if len(points) == CHART_VERSIONS else ""
    return core_charts.lines(
        [f"v{number}" for number, _ in points], {label: [value for _, value in points]},
        title=f"{label} across versions (holdout{newest})", x_title="version", y_title=label,
        caption="Each version's score on its own holdout; a new version should not fall below the one in production.",
    )


def model_detail(request, pk: int):
    require_viewer(request)
    model = get_object_or_404(RegisteredModel.objects.select_related("owner"), pk=pk)
    versions = (model.versions.select_related("run__experiment", "created_by", "model").order_by("-version")
                .defer("signature", "tags", "flavors", "signature_outputs", "untrusted_types",
                       "declared_trusted_types", "not_deployable_reasons", "classes",
                       "run__charts", "run__importances", "run__signature", "run__log", "run__spec",
                       "run__cv_scores", "run__latest_metrics", "run__tags", "run__model_outputs"))
    page = Paginator(versions, VERSIONS_PER_PAGE).get_page(request.GET.get("page"))
    history = StageTransition.objects.filter(model_version__model=model).select_related(
        "model_version", "actor", "promotion").order_by("-created_at", "-id")[:HISTORY_ROWS]
    at_raw = request.GET.get("at", "")
    at_result = None
    if at_raw:
        when = parse_when(at_raw)
        if when is None:
            at_result = {"error": f"Not a date: {at_raw!r}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM."}
        else:
            at_result = {"when": when, "version": production_at(model, when)}
    return render(request, "registry/model.html", {
        "model": model, "versions": page.object_list, "page": page, "history": history,
        "history_rows": HISTORY_ROWS, "figure": _versions_chart(model), "at": at_raw, "at_result": at_result,
    })


def version_detail(request, pk: int):
    require_viewer(request)
    version = get_object_or_404(
        ModelVersion.objects.select_related("model", "run__experiment", "run__dataset_version__dataset", "created_by")
        .prefetch_related("run__inputs__dataset_version__dataset"),
        pk=pk,
    )
    can_request = roles.can(request.user, "request_promotion")
    return render(request, "registry/version.html", {
        "version": version,
        "model": version.model,
        "history": version.transitions.select_related("actor", "promotion"),
        "promotions": version.promotions.select_related("requested_by", "on_behalf_of", "decided_by").with_owners(),
        "can_request": can_request,
        "metric_labels": {k: v["label"] for k, v in METRICS.items()},
        **_external_context(version, can_request=can_request),
    })


def _external_context(version: ModelVersion, *, can_request: bool) -> dict:
    import sklearn

    from .evaluation import evaluation_choices, proposed_evaluation
    from .external import aliases_by_version
    from .loading import deployability_now

    context = {"our_sklearn": sklearn.__version__, "aliases": aliases_by_version([version.model]).get(version.pk, [])}
    if version.is_external:
        proposed, why = proposed_evaluation(version)
        context.update(refused_now=deployability_now(version), proposed_evaluation=proposed, proposed_why=why,
                       # the form's choices read up to 300 dataset schemas: only for those shown the form
                       evaluation_choices=evaluation_choices(version) if can_request else [])
    return context


@require_POST
def register(request, run_pk: int):
    run = get_object_or_404(Run.objects.select_related("experiment", "job"), pk=run_pk)
    try:
        version = model_version_register(user=request.user, run=run, model_name=request.POST.get("model_name", ""))
    except (ValidationError, Conflict) as exc:
        messages.error(request, error_text(exc))
        return redirect(run)
    messages.success(request, f"Registered run #{run.number} as {version}.")
    return redirect(version)


@require_POST
def request_promotion(request, pk: int):
    version = get_object_or_404(ModelVersion.objects.select_related("model"), pk=pk)
    try:
        promotion = promotion_request(user=request.user, version=version,
                                      target_stage=request.POST.get("target_stage", ""),
                                      reason=request.POST.get("reason", ""),
                                      evaluation_dataset_version=request.POST.get("evaluation_dataset_version") or None,
                                      evaluation_target=request.POST.get("evaluation_target", ""))
    except (ValidationError, Conflict) as exc:
        messages.error(request, error_text(exc))
        return redirect(version)
    messages.success(request, "Promotion requested; the gates are running and analysts have been notified.")
    return redirect(promotion)


def queue(request):
    require_viewer(request)
    status = request.GET.get("status", PromotionStatus.PENDING)
    promotions = PromotionRequest.objects.select_related(
        "model_version__model", "requested_by", "on_behalf_of", "decided_by", "job",
    ).defer("evidence", "job__params", "job__result", "model_version__signature").with_owners()
    if status in PromotionStatus.values:
        promotions = promotions.filter(status=status)
    page = page_from_request(request, promotions, size=PROMOTIONS_PER_PAGE)
    return render(request, "registry/queue.html", {
        "promotions": page.rows, "page": page, "status": status, "statuses": PromotionStatus.choices,
    })


def _promotion_context(request, promotion):
    evidence = promotion.evidence or {}
    challenger = evidence.get("challenger", {})
    champion = evidence.get("champion")
    same = evidence.get("same_holdout")
    metric_names = [k for k, v in METRICS.items() if v["task_type"] == promotion.model_version.model.task_type]
    figure = None
    if same:
        figure = core_charts.grouped_bars(
            [METRICS[m]["label"] for m in metric_names],
            {f"challenger {challenger.get('label')}": [same["challenger"]["metrics"].get(m) for m in metric_names],
             f"champion {champion.get('label')}": [same["champion"]["metrics"].get(m) for m in metric_names]},
            title=f"Champion against challenger on the same {same['rows']} holdout rows", x_title="metric",
            y_title="score on those rows",
            caption="Both versions scored on identical rows, so the bars compare like with like; the gates "
                    "judge the primary metric.",
        )
    user = request.user
    can_decide = roles.can(user, "decide_promotion")
    return {
        "promotion": promotion, "version": promotion.model_version, "model": promotion.model_version.model,
        "challenger": challenger, "champion": champion, "same": same, "metric_names": metric_names,
        "metric_labels": {k: v["label"] for k, v in METRICS.items()}, "figure": figure,
        "challenger_cm": confusion((same or {}).get("challenger", {}).get("confusion_matrix")
                                   or challenger.get("confusion_matrix")),
        "champion_cm": confusion((same or {}).get("champion", {}).get("confusion_matrix")),
        "validation": evidence.get("validation"),
        "evaluation": evidence.get("evaluation"), "sklearn": evidence.get("sklearn"),
        "can_decide": can_decide and promotion.status == PromotionStatus.PENDING,
        "own_request": promotion.is_own(user),
        "own_because": promotion.own_because(user),
    }


def promotion_detail(request, pk: int):
    require_viewer(request)
    promotion = get_object_or_404(PromotionRequest.objects.select_related(
        "model_version__model", "model_version__run", "requested_by", "on_behalf_of", "decided_by", "job", "champion",
        "evaluation_dataset_version__dataset").with_owners(), pk=pk)
    if request.htmx and request.htmx.target == "gates":
        response = render(request, "registry/promotion.html#gates", _promotion_context(request, promotion))
        if promotion.job and promotion.job.is_finished:
            response["HX-Refresh"] = "true"
        return response
    return render(request, "registry/promotion.html", _promotion_context(request, promotion))


def _decide(request, pk: int, approve: bool):
    promotion = get_object_or_404(PromotionRequest.objects.select_related("model_version__model", "job"), pk=pk)
    status, error = 200, None
    try:
        if approve:
            promotion_approve(user=request.user, promotion=promotion, comment=request.POST.get("comment", ""),
                              override_reason=request.POST.get("override_reason", ""))
        else:
            promotion_reject(user=request.user, promotion=promotion, comment=request.POST.get("comment", ""))
    except PermissionDenied as exc:
        status, error = 403, str(exc)
    except Conflict as exc:
        status, error = 409, str(exc.detail)
    except ValidationError as exc:
        status, error = 400, error_text(exc)
    promotion.refresh_from_db()
    context = _promotion_context(request, promotion) | {"decision_error": error}
    if request.htmx:
        response = render(request, "registry/promotion.html#decision", context, status=status)
        if error is None:
            response["HX-Trigger"] = "stage-changed"
        return response
    if status == 403:
        raise PermissionDenied(error)
    if error:
        messages.error(request, error)
    return redirect(promotion)


@require_POST
def approve(request, pk: int):
    return _decide(request, pk, approve=True)


@require_POST
def reject(request, pk: int):
    return _decide(request, pk, approve=False)


def stage_badge(request, pk: int):
    require_viewer(request)
    version = get_object_or_404(ModelVersion, pk=pk)
    return render(request, "registry/_stage_badge.html", {"version": version})


def parse_when(raw: str) -> datetime | None:
    try:
        when = parse_datetime(raw) or (parse_datetime(raw + "T23:59:59") if len(raw) == 10 else None)
    except ValueError:  # well formed but impossible, such as 2024-02-30
        return None
    if when is not None and timezone.is_naive(when):
        when = timezone.make_aware(when)
    return when
