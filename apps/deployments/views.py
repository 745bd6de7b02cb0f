from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import charts, roles
from apps.core.api_errors import Conflict
from apps.core.messages import error_text
from apps.core.views import require_viewer
from apps.ml.errors import DataFileError
from apps.registry.models import ModelVersion

from . import runtime
from .forms import DeployForm
from .models import BatchScore, Deployment, DeploymentStatus, Environment, PredictionLog, may_deploy_somewhere
from .selectors import timeseries, traffic_24h
from .services import batch_create, deployment_create, deployment_rollback

DEPLOY_CHOICES = 50


def _deploy_choices(search: str) -> list[ModelVersion]:
    """The picker's versions: the newest non-archived ones whose model's name contains ``search``,
    listed by model; a registry of thousands of versions is searched, not listed."""
    versions = ModelVersion.objects.exclude(stage="archived").only("version", "stage", "model", "model__name")
    if search:
        versions = versions.filter(model__name__icontains=search)
    newest = versions.select_related("model").order_by("-id")[:DEPLOY_CHOICES]
    return sorted(newest, key=lambda v: (v.model.name, -v.version))


def deployment_list(request):
    require_viewer(request)
    environments = list(Environment.objects.all())
    active = list(Deployment.objects.filter(status=DeploymentStatus.ACTIVE)
                  .select_related("model", "model_version", "environment", "deployed_by"))
    stats = traffic_24h([d.pk for d in active])
    by_env = {e.pk: [] for e in environments}
    for d in active:
        by_env.setdefault(d.environment_id, []).append({"deployment": d, "stats": stats[d.pk]})
    search = request.GET.get("version_search", "").strip()[:100]
    return render(request, "deployments/list.html", {
        "sections": [(e, by_env.get(e.pk, [])) for e in environments],
        "deployable": _deploy_choices(search),
        "version_search": search,
        "deploy_choices": DEPLOY_CHOICES,
        "environments": environments,
        "can_deploy": may_deploy_somewhere(request.user),
    })


@require_POST
def deploy(request):
    require_viewer(request)
    form = DeployForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.error_text())
        return redirect("deployments:list")
    version, environment = form.cleaned_data["model_version"], form.cleaned_data["environment"]
    try:
        deployment = deployment_create(user=request.user, version=version, environment=environment,
                                       note=form.cleaned_data["note"])
    except (ValidationError, Conflict) as exc:
        messages.error(request, error_text(exc))
        return redirect("deployments:list")
    messages.success(request, f"{version} is now serving in {environment.name}.")
    return redirect(deployment)


def deployment_detail(request, pk: int):
    require_viewer(request)
    deployment = get_object_or_404(
        Deployment.objects.select_related("model", "model_version__run__dataset_version", "environment",
                                          "deployed_by", "previous__model_version"), pk=pk)
    series = timeseries(deployment)
    figures = {}
    if series["hours"]:
        per = series["bucket"]
        figures["requests"] = charts.lines(series["hours"], {"requests": series["requests"]},
                                           title=f"Requests per {per}", x_title=f"{per} (UTC)", y_title="requests",
                                           caption="Traffic the deployment answered; a sudden drop often means a client broke.")
        figures["latency"] = charts.lines(series["hours"], {"p50": series["p50"], "p95": series["p95"]},
                                          title=f"Latency per {per} (ms, server side)", x_title=f"{per} (UTC)",
                                          y_title="latency (ms)",
                                          caption="p95 is the time within which 95% of requests were answered; watch it, not the median.")
        if series["classes"]:
            fig = charts.lines(series["hours"], series["class_share"], title=f"Prediction mix per {per}",
                               x_title=f"{per} (UTC)", y_title="share of predictions", mode="lines",
                               caption="The share of each answered class; a band that swells is worth a drift check.")
            for trace in fig["data"]:
                trace["stackgroup"] = "one"
            figures["predictions"] = fig
        elif series["numeric_predictions"]:
            figures["predictions"] = charts.lines(series["hours"], {"mean prediction": series["mean_prediction"]},
                                                  title=f"Mean prediction per {per}", x_title=f"{per} (UTC)",
                                                  y_title="mean prediction (target's unit)",
                                                  caption="A level that moves means the model's answers have shifted.")
    recent = PredictionLog.objects.filter(deployment_id=deployment.pk).order_by("-id")[:25]
    history = Deployment.objects.filter(model=deployment.model, environment=deployment.environment).select_related(
        "model_version", "deployed_by")[:20]
    environment = deployment.environment
    held = runtime.peek(deployment.model_version) if deployment.is_active else None
    if isinstance(held, runtime.ArtifactRefused):
        messages.error(request, f"This deployment cannot serve: {held.message}")
    return render(request, "deployments/detail.html", {
        "deployment": deployment, "figures": figures, "series": series, "recent": recent, "history": history,
        "stats": traffic_24h([deployment.pk])[deployment.pk],
        "can_rollback": environment.allows_deploy_by(request.user) and deployment.is_active and deployment.previous_id,
        "can_batch": environment.allows_batch_scoring_by(request.user),
        "can_predict": roles.can(request.user, "predict"),
        "signature": runtime.serving_signature(deployment.model_version),
        "loaded": held if isinstance(held, runtime.LoadedModel) else None,
        "warming": deployment.is_active and held is None,
        "batches": deployment.batches.select_related("job", "created_by")[:10],
    })


@require_POST
def rollback(request, pk: int):
    deployment = get_object_or_404(Deployment.objects.select_related("environment"), pk=pk)
    try:
        restored = deployment_rollback(user=request.user, deployment=deployment, reason=request.POST.get("reason", ""))
    except Conflict as exc:
        messages.error(request, error_text(exc))
        return redirect(deployment)
    messages.success(request, f"Rolled back: {restored.model_version} serves {restored.environment.name} again.")
    return redirect(restored)


@require_POST
def batch_upload(request, pk: int):
    deployment = get_object_or_404(Deployment.objects.select_related("environment", "model_version"), pk=pk)
    uploaded = request.FILES.get("file")
    error = getattr(request, "upload_error", None)
    if error is None:
        try:
            batch = batch_create(user=request.user, deployment=deployment, uploaded=uploaded)
        except PermissionDenied:
            raise
        except (ValidationError, DataFileError) as exc:
            error = error_text(exc)
    if error:
        messages.error(request, error)
        return redirect(deployment)
    return redirect(batch)


def batch_detail(request, pk: int):
    require_viewer(request)
    batch = get_object_or_404(BatchScore.objects.select_related("deployment__model_version", "job", "created_by"), pk=pk)
    if request.htmx and request.htmx.target == "batch-status":
        response = render(request, "deployments/batch.html#status", {"batch": batch})
        if batch.job and batch.job.is_finished:
            response["HX-Refresh"] = "true"
        return response
    return render(request, "deployments/batch.html", {"batch": batch})


def batch_download(request, pk: int):
    require_viewer(request)
    batch = get_object_or_404(BatchScore, pk=pk)
    if not batch.output_file:
        raise PermissionDenied("This batch has no scored file yet.")
    return FileResponse(batch.output_file.open("rb"), as_attachment=True, filename=f"batch-{batch.pk}-scored.csv")
