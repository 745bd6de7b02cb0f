from __future__ import annotations

import re
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, F, FloatField, OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from apps.core import roles
from apps.core.charts import grouped_bars
from apps.core.messages import error_messages, error_text
from apps.core.views import HTMX_STOP_POLLING, require_viewer
from apps.datasets.models import Dataset
from apps.ml import metrics as ml_metrics
from apps.ml.catalog import list_algorithms
from apps.ml.errors import MLError

from . import charts, views_mlflow
from .forms import ExperimentForm, RunLaunchForm, param_fields, params_and_grid
from .models import Experiment, Run, TaskType
from .services import experiment_create, run_again, run_cancel, run_launch

EXPERIMENTS_PER_PAGE = 50
RUNS_PER_PAGE = 50
CHART_RUNS = 200
DATASET_VERSION_CHOICES = 50


def experiment_list(request):
    require_viewer(request)
    top_level_runs = Run.objects.filter(experiment=OuterRef("pk"), parent__isnull=True).order_by().values("experiment")
    experiments = Experiment.objects.select_related("dataset", "created_by").annotate(
        # counted for the page's rows only, not grouped over every run of every experiment
        run_count=Coalesce(Subquery(top_level_runs.annotate(n=Count("*")).values("n")), 0)
    ).order_by("-created_at", "-id")
    page = Paginator(experiments, EXPERIMENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "experiments/list.html", {
        "experiments": page.object_list, "page": page, "can_launch": roles.can(request.user, "launch_training"),
    })


def _may_launch(user) -> bool:
    return roles.can(user, "launch_training")


def experiment_new(request):
    datasets = Dataset.objects.filter(latest_version__isnull=False).select_related("latest_version").order_by("name")
    source = request.POST if request.method == "POST" else request.GET
    values = {k: source.get(k, "") for k in ("name", "dataset", "target", "task_type", "primary_metric", "description")}
    dataset = datasets.filter(pk=values["dataset"]).first() if re.fullmatch(r"[0-9]{1,18}", values["dataset"]) else None
    errors: dict = {}
    if request.method == "POST":
        form = ExperimentForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(form.errors)
            experiment = experiment_create(user=request.user, **form.cleaned_data)
        except (ValidationError, MLError) as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, f"Experiment {experiment.name!r} created; launch its first runs.")
            return redirect(experiment)
    if not _may_launch(request.user):  # the form is shown only to those whose experiments the service accepts
        raise PermissionDenied("Your role does not allow this (launch training).")
    context = {
        "form": values, "errors": errors, "datasets": datasets, "selected": dataset,
        "columns": dataset.latest_version.schema if dataset else [], "task_types": TaskType.choices,
        "metrics": [(k, v["label"], v["task_type"]) for k, v in ml_metrics.METRICS.items()],
    }
    if request.htmx and request.htmx.target == "target-field":
        return render(request, "experiments/new.html#target", context)
    return render(request, "experiments/new.html", context, status=400 if errors else 200)


def _runs_table(request, experiment, metric_names: list[str]):
    """One page of the experiment's runs, filtered and sorted in the database."""
    runs = (
        experiment.runs.filter(parent__isnull=True)
        .select_related("job", "dataset_version", "created_by")
        .defer("charts", "importances", "signature", "log", "spec", "cv_scores", "cv_mean", "library_versions",
               "latest_metrics", "tags", "model_outputs")
    )
    algorithm, status = request.GET.get("algorithm", ""), request.GET.get("status", "")
    if algorithm:
        runs = runs.filter(algorithm=algorithm)
    if status:
        runs = runs.filter(job__status=status)
    sort = request.GET.get("sort", "-number")
    key, descending = sort.lstrip("-"), sort.startswith("-")
    if key in metric_names:
        value = F("_sort_value").desc(nulls_last=True) if descending else F("_sort_value").asc(nulls_last=True)
        runs = runs.annotate(_sort_value=Cast(KeyTextTransform(key, "metrics"), FloatField())).order_by(value,
                                                                                                       "-number")
    else:
        sort = "number" if sort == "number" else "-number"
        runs = runs.order_by("number" if sort == "number" else "-number")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return page, {"algorithm": algorithm, "status": status, "sort": sort}


def _chart_runs(experiment) -> list[Run]:
    """The newest finished runs, with only what the charts draw: a chart of 10,000 bars helps nobody."""
    return list(experiment.runs.filter(parent__isnull=True, metrics__has_key=experiment.primary_metric)
                .order_by("-number").only("experiment", "number", "algorithm", "params", "metrics")[:CHART_RUNS])


def experiment_detail(request, pk: int):
    require_viewer(request)
    experiment = get_object_or_404(Experiment.objects.select_related("dataset", "created_by"), pk=pk)
    if experiment.is_mlflow:
        return views_mlflow.mlflow_experiment_detail(request, experiment)
    metric_names = [m for m, _ in ml_metrics.primary_metric_choices(experiment.task_type)]
    page, filters = _runs_table(request, experiment, metric_names)
    active = any(r.is_active for r in page)
    context = {
        "experiment": experiment, "page": page, "runs": page.object_list, "filters": filters,
        "metric_names": metric_names, "active": active,
        "metric_labels": {m: ml_metrics.METRICS[m]["label"] for m in metric_names},
    }
    if request.htmx and request.htmx.target == "runs-table":
        response = render(request, "experiments/detail.html#runs", context)
        if not active and request.GET.get("poll"):
            response.status_code = HTMX_STOP_POLLING
        return response
    algorithms = list_algorithms(experiment.task_type)
    keys = [a["key"] for a in algorithms]
    chosen = request.GET.get("algorithm") if request.GET.get("algorithm") in keys else (keys[0] if keys else "")
    finished = _chart_runs(experiment)
    params = [p for r in finished for p in (r.params or {})]
    param = request.GET.get("param") or (params[0] if params else "")
    context.update({
        "algorithms": algorithms,
        "chosen_algorithm": chosen,
        "fields": param_fields(chosen) if chosen else [],
        "versions": experiment.dataset.versions.defer("profile", "reference", "schema", "validation")
        .order_by("-number")[:DATASET_VERSION_CHOICES],
        "can_launch": roles.can(request.user, "launch_training"),
        "chart_runs": len(finished) if len(finished) == CHART_RUNS else None,
        "metric_chart": charts.metric_by_run(finished, experiment.primary_metric),
        "param_chart": charts.param_vs_metric(finished, experiment.primary_metric, param) if param else None,
        "param_choices": sorted(set(params)),
        "param": param,
    })
    return render(request, "experiments/detail.html", context)


def param_form(request, pk: int):
    require_viewer(request)
    experiment = get_object_or_404(Experiment, pk=pk)
    algorithm = request.GET.get("algorithm", "")
    try:
        fields = param_fields(algorithm)
    except MLError as exc:
        return HttpResponse(format_html('<p class="error">{}</p>', exc.message), status=400)
    return render(request, "experiments/detail.html#params", {"experiment": experiment, "fields": fields})


@require_POST
def run_create(request, pk: int):
    experiment = get_object_or_404(Experiment.objects.select_related("dataset"), pk=pk)
    form = RunLaunchForm(request.POST, experiment=experiment)
    algorithm = request.POST.get("algorithm", "")
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        params, grid = params_and_grid(form.cleaned_data["algorithm"], request.POST)
        run = run_launch(
            user=request.user, experiment=experiment, dataset_version=form.cleaned_data["dataset_version"],
            algorithm=form.cleaned_data["algorithm"], params=params, grid=grid,
            random_state=form.cleaned_data["random_state"] or 0,
        )
    except (ValidationError, MLError) as exc:
        if not _may_launch(request.user):  # feedback on the input only for those who may launch
            raise PermissionDenied("Your role does not allow this (launch training).") from None
        errors = error_messages(exc)
        messages.error(request, "; ".join(f"{k}: {' '.join(v)}" if k != "general" else " ".join(v)
                                          for k, v in errors.items()))
        return redirect(f"{experiment.get_absolute_url()}?{urlencode({'algorithm': algorithm})}")
    messages.success(request, f"Run #{run.number} queued ({run.algorithm}).")
    return redirect(experiment)


def run_detail(request, pk: int):
    require_viewer(request)
    run = get_object_or_404(
        Run.objects.select_related("experiment", "dataset_version__dataset", "job", "created_by", "rerun_of"), pk=pk
    )
    if run.is_mlflow:
        return views_mlflow.mlflow_run_detail(request, run)
    if request.htmx and request.htmx.target == "run-status":
        response = render(request, "experiments/run.html#status", {"run": run})
        if not run.is_active:
            response["HX-Refresh"] = "true"
        return response
    metric_names = [m for m, _ in ml_metrics.primary_metric_choices(run.experiment.task_type)]
    context = {
        "run": run,
        "experiment": run.experiment,
        "metric_rows": [(m, ml_metrics.METRICS[m]["label"], (run.metrics or {}).get(m), (run.cv_mean or {}).get(m),
                         (run.cv_scores or {}).get(m) or []) for m in metric_names],
        "trials": run.trials.order_by("number") if run.param_grid else [],
        "reruns": run.reruns.select_related("job").order_by("number"),
        "can_launch": roles.can(request.user, "launch_training"),
        "can_register": roles.can(request.user, "register_model") and run.status == "succeeded"
        and bool(run.artifact_sha256),
        "confusion": charts.confusion((run.charts or {}).get("confusion_matrix")),
        "roc": charts.roc((run.charts or {}).get("roc")),
        "residuals": charts.residuals(run.charts),
        "importances": charts.importances(run.importances or []),
        "folds": charts.folds(run.cv_scores, run.experiment.primary_metric),
    }
    return render(request, "experiments/run.html", context)


@require_POST
def run_again_view(request, pk: int):
    run = get_object_or_404(Run.objects.select_related("experiment"), pk=pk)
    try:
        new = run_again(user=request.user, run=run)
    except (ValidationError, MLError) as exc:
        messages.error(request, error_text(exc))
        return redirect(run)
    messages.success(request, f"Run #{new.number} reproduces run #{run.number}.")
    return redirect(new)


@require_POST
def run_cancel_view(request, pk: int):
    run = get_object_or_404(Run.objects.select_related("job"), pk=pk)
    run_cancel(user=request.user, run=run)
    messages.info(request, f"Cancelling run #{run.number}.")
    return redirect(run)


def run_compare(request, pk: int):
    require_viewer(request)
    experiment = get_object_or_404(Experiment, pk=pk)
    raw = request.GET.getlist("runs") or request.GET.get("ids", "").split(",")
    ids = [int(x) for x in raw if re.fullmatch(r"[0-9]{1,18}", str(x).strip())]
    if experiment.is_mlflow:
        return views_mlflow.mlflow_compare(request, experiment, ids)
    error = None
    if not 2 <= len(ids) <= 5:
        error = "Pick between 2 and 5 runs to compare."
        runs = []
    else:
        runs = list(experiment.runs.filter(pk__in=ids).select_related("job", "dataset_version"))
        if len(runs) != len(set(ids)):
            error = "Some of those runs are not part of this experiment."
    metric_names = [m for m, _ in ml_metrics.primary_metric_choices(experiment.task_type)]
    param_names = sorted({p for r in runs for p in (r.params or {})})
    figure = None
    if runs and not error:
        figure = grouped_bars(
            [ml_metrics.METRICS[m]["label"] for m in metric_names],
            {f"#{r.number} {r.algorithm}": [(r.metrics or {}).get(m) for m in metric_names] for r in runs},
            title="Holdout metrics side by side",
        )
    return render(request, "experiments/compare.html", {
        "experiment": experiment, "runs": runs, "error": error, "metric_names": metric_names,
        "metric_labels": {m: ml_metrics.METRICS[m]["label"] for m in metric_names},
        "param_names": param_names, "figure": figure,
        "confusions": [(r, charts.confusion((r.charts or {}).get("confusion_matrix")), f"confusion-{r.pk}")
                       for r in runs],
    }, status=400 if error else 200)
