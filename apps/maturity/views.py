from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.views import HTMX_STOP_POLLING, require_viewer
from apps.registry.models import RegisteredModel

from . import charts
from .criteria import CRITERIA, evaluate_all, evaluate_model
from .models import MaturitySettings, MaturitySnapshot, PipelineChange, PipelineStatus
from .services import pipeline_policy_of, pipeline_sync, snapshot_request

HISTORY_DAYS = 90


def overview(request):
    """The home page for business users: the portfolio, headline figures and maturity over time."""
    require_viewer(request)
    cfg = MaturitySettings.load()
    results = evaluate_all()
    snapshots = list(MaturitySnapshot.objects.filter(taken_at__gte=timezone.now() - timedelta(days=HISTORY_DAYS))
                     .only("model_id", "taken_at", "level").order_by("taken_at", "id"))
    names = {r.model.pk: r.model.name for r in results}
    in_production = [r for r in results if r.production_version is not None]
    healthy = [r for r in in_production if r.health == "ok"]
    return render(request, "maturity/overview.html", {
        "results": results,
        "headline": {
            "in_production": len(in_production),
            "share_healthy": (len(healthy) / len(in_production)) if in_production else None,
            "releases": sum(r.releases for r in results),
            "window": cfg.releases_window_days,
            "levels": {lvl: sum(1 for r in results if r.level == lvl) for lvl in (0, 1, 2)},
        },
        "levels_chart": charts.levels_over_time(snapshots),
        "steps_chart": charts.level_steps(snapshots, names),
        "criteria_chart": charts.criteria_completion(results, CRITERIA),
        "last_snapshot": snapshots[-1].taken_at if snapshots else None,
    })


def model_maturity(request, pk: int):
    require_viewer(request)
    model = get_object_or_404(RegisteredModel, pk=pk)
    result = evaluate_model(model)
    snapshots = list(MaturitySnapshot.objects.filter(model=model).only("model_id", "taken_at", "level")
                     .order_by("taken_at", "id"))
    changes = list(model.pipeline_changes.select_related("created_by", "run")[:10])
    return render(request, "maturity/model.html", {
        "model": model, "result": result,
        "levels": [(lvl, [c for c in result.criteria if c["level"] == lvl]) for lvl in (1, 2)],
        "history_chart": charts.level_steps(snapshots, {model.pk: model.name}),
        "snapshots": snapshots[-10:][::-1], "changes": changes,
        "pipeline_policy": pipeline_policy_of(model),
    })


@require_POST
def recompute(request):
    job = snapshot_request(user=request.user)
    messages.success(request, f"Recomputing every model's maturity (job #{job.pk}); the charts update when it ends.")
    target = request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = "home"
    return redirect(target)


def pipeline_change(request, pk: int):
    require_viewer(request)
    change = get_object_or_404(PipelineChange.objects.select_related("model", "run", "model_version", "created_by",
                                                                     "staging_promotion", "production_promotion",
                                                                     "deployment__environment"), pk=pk)
    change = pipeline_sync(change)
    steps = list(change.steps.select_related("job"))
    template = "maturity/pipeline_change.html#steps" if request.htmx else "maturity/pipeline_change.html"
    response = render(request, template, {"change": change, "steps": steps,
                                          "live": change.status == PipelineStatus.RUNNING})
    if request.htmx and change.status != PipelineStatus.RUNNING:
        response.status_code = HTMX_STOP_POLLING
    return response
