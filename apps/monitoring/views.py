from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.messages import error_messages, error_text
from apps.core.views import require_viewer

from . import charts
from .external import drift_reference_of, expected_metrics, retrain_elsewhere_text
from .forms import MonitorPolicyForm
from .models import Alert, AlertStatus, DriftReport, MonitorPolicy, Retraining
from .services import (
    active_deployment_of,
    check_request,
    may_request_check,
    policy_may_edit,
    policy_may_set_webhook,
    policy_update,
    retraining_refresh,
    retraining_request,
)

HISTORY_REPORTS = 120


def _health(policy, last, open_alerts) -> str:
    if last is None:
        return "unknown"
    if open_alerts or last.status == "drifting":
        return "drifting"
    if last.status == "not_enough_data" or last.drifted_features:
        return "warning"
    return "ok"


def overview(request):
    require_viewer(request)
    latest_id = DriftReport.objects.filter(policy=OuterRef("pk")).order_by("-window_end", "-id").values("pk")[:1]
    policies = list(MonitorPolicy.objects.select_related("model", "environment").annotate(latest_id=Subquery(latest_id))
                    .prefetch_related(Prefetch("alerts", queryset=Alert.objects.filter(status=AlertStatus.OPEN),
                                               to_attr="open_alerts")))
    latest = DriftReport.objects.defer("prediction_drift", "performance").in_bulk(
        [p.latest_id for p in policies if p.latest_id])
    tiles = []
    for p in policies:
        last = latest.get(p.latest_id)
        tiles.append({"policy": p, "last": last, "health": _health(p, last, p.open_alerts),
                      "open_alerts": p.open_alerts})
    alerts = Alert.objects.select_related("policy__model", "policy__environment").order_by("-opened_at")[:20]
    return render(request, "monitoring/overview.html", {"tiles": tiles, "alerts": alerts})


def detail(request, pk: int):
    require_viewer(request)
    policy = get_object_or_404(MonitorPolicy.objects.select_related("model", "environment"), pk=pk)
    reports = list(policy.reports.order_by("-window_end")[:HISTORY_REPORTS])[::-1]
    alerts = list(policy.alerts.select_related("opened_by").prefetch_related("retrainings").order_by("opened_at"))
    retrainings = [retraining_refresh(r) for r in policy.retrainings.select_related(
        "alert", "run__job", "model_version__model", "promotion", "dataset_version__dataset", "job").order_by("created_at")]
    deployment = active_deployment_of(policy)
    metric = policy.performance_metric or policy.model.primary_metric
    holdout = expected_metrics(deployment.model_version).get(metric) if deployment else None
    version = deployment.model_version if deployment else None
    return render(request, "monitoring/detail.html", {
        "reference": drift_reference_of(policy, version) if version else None,
        "retrain_elsewhere": retrain_elsewhere_text(version) if version and version.is_external else "",
        "policy": policy, "deployment": deployment, "reports": reports[::-1][:20], "alerts": alerts[::-1],
        "retrainings": retrainings[::-1],
        "share_chart": charts.drift_share(reports, policy.drift_share, alerts, retrainings),
        "heatmap": charts.feature_heatmap(reports),
        "performance_chart": charts.performance(reports, metric, holdout, alerts, retrainings),
        "prediction_chart": charts.prediction_mix(reports),
        "can_edit": policy_may_edit(request.user),
        "can_check": may_request_check(request.user),
    })


def report_detail(request, pk: int):
    require_viewer(request)
    report = get_object_or_404(DriftReport.objects.select_related("policy__model", "policy__environment",
                                                                  "model_version", "reference_dataset_version"), pk=pk)
    features = [dict(f, figure=charts.overlay(f), chart_id=f"overlay-{i}") for i, f in enumerate(report.features)]
    return render(request, "monitoring/report.html", {
        "report": report, "features": features,
        "prediction_figure": charts.overlay(report.prediction_drift) if report.prediction_drift else None,
        "alerts": Alert.objects.filter(opened_by=report) | Alert.objects.filter(resolved_by=report),
    })


def report_feature(request, pk: int, name: str):
    require_viewer(request)
    report = get_object_or_404(DriftReport, pk=pk)
    feature = next((f for f in report.features if f["name"] == name), None)
    if feature is None:
        raise Http404(f"No feature {name!r} in this report.")
    return render(request, "monitoring/_feature.html", {
        "report": report, "feature": feature, "figure": charts.overlay(feature), "chart_id": f"cell-{pk}-{name}"})


def policy_settings(request, pk: int):
    require_viewer(request)
    policy = get_object_or_404(MonitorPolicy.objects.select_related("model", "environment"), pk=pk)
    may_set_webhook = policy_may_set_webhook(request.user)
    form = MonitorPolicyForm(request.POST or None, instance=policy, may_set_webhook=may_set_webhook)
    if request.method == "POST" and form.is_valid():
        try:
            policy_update(user=request.user, policy=policy, values=form.changes())
        except ValidationError as exc:
            for field, errors in error_messages(exc).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Monitoring of {policy} updated.")
            return redirect(policy)
    if not policy_may_edit(request.user):  # the form is shown only to those whose changes the service accepts
        raise PermissionDenied("Only ML engineers and admins change monitor policies.")
    policy.refresh_from_db()  # the form validated the posted values on this instance
    return render(request, "monitoring/settings.html", {
        "policy": policy, "form": form, "may_set_webhook": may_set_webhook,
    }, status=400 if form.errors else 200)


@require_POST
def check_now(request, pk: int):
    policy = get_object_or_404(MonitorPolicy, pk=pk)
    try:
        job = check_request(user=request.user, policy=policy)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect(policy)
    messages.success(request, "Drift check queued.")
    return redirect(job)


@require_POST
def retrain_now(request, pk: int):
    policy = get_object_or_404(MonitorPolicy, pk=pk)
    try:
        retraining = retraining_request(user=request.user, policy=policy)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect(policy)
    return redirect(retraining)


def alert_detail(request, pk: int):
    require_viewer(request)
    alert = get_object_or_404(Alert.objects.select_related("policy__model", "policy__environment", "opened_by",
                                                           "resolved_by"), pk=pk)
    return render(request, "monitoring/alert.html", {
        "alert": alert, "retrainings": alert.retrainings.all(),
        # what a delivery met (statuses, errors) is for those who run monitoring, not every reader
        "show_delivery": policy_may_edit(request.user),
    })


def retraining_detail(request, pk: int):
    require_viewer(request)
    retraining = get_object_or_404(Retraining.objects.select_related(
        "policy__model", "policy__environment", "alert", "job", "dataset_version", "run__job", "model_version",
        "promotion", "source_version"), pk=pk)
    return render(request, "monitoring/retraining.html", {"retraining": retraining_refresh(retraining)})
