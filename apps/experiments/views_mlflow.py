"""Pages for work logged with the MLflow client: an MLflow experiment's runs (filter with MLflow's
own search syntax, sort by any metric, compare), a run's params, tags, metric histories, logged
datasets, artifacts and logged models, and downloads of its files."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from apps.core import charts as core_charts
from apps.core.views import require_viewer

from . import search
from .artifacts import artifact_chunks
from .models import ArtifactFile, Experiment, MetricPoint, Run

RUNS_PER_PAGE = 50
MAX_METRIC_COLUMNS = 8
MAX_CHARTS = 12
MAX_POINTS_PER_CHART = 5000
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "SCHEDULED")


def _runs_query(request, experiment: Experiment):
    runs = (experiment.runs.filter(parent__isnull=True, lifecycle_stage="active").select_related("created_by")
            .defer("charts", "importances", "signature", "log", "spec", "cv_scores", "latest_metrics"))
    text, status, sort = request.GET.get("filter", "").strip(), request.GET.get("status", ""), request.GET.get("sort", "")
    error = ""
    try:
        runs = search.filter_runs(runs, search.parse_filter(text))
        if status in STATUSES:
            runs = runs.filter(mlflow_status=status)
        order = []
        if sort:
            entity, _, key = sort.lstrip("-").partition(".")
            order = [(search.ENTITIES.get(entity, entity), key, not sort.startswith("-"))]
        runs = search.order_runs(runs, order)
    except ValidationError as exc:
        error = " ".join(exc.messages)
        runs = search.order_runs(experiment.runs.none(), [])
    return runs, {"filter": text, "status": status, "sort": sort}, error


def mlflow_experiment_detail(request, experiment: Experiment):
    require_viewer(request)
    runs, filters, error = _runs_query(request, experiment)
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    metric_names = sorted({k for r in rows for k, v in (r.metrics or {}).items() if v is not None})[:MAX_METRIC_COLUMNS]
    figure = None
    if len(metric_names) and rows:
        metric = filters["sort"].lstrip("-").partition(".")[2] if filters["sort"].lstrip("-").startswith(
            "metrics.") else metric_names[0]
        points = [(r.display_name, (r.metrics or {}).get(metric)) for r in reversed(rows)]
        points = [p for p in points if p[1] is not None]
        if points:
            figure = core_charts.bars([p[0] for p in points], [p[1] for p in points], title=f"{metric} by run",
                                      x_title="run", y_title=f"{metric} (as logged)",
                                      caption="The latest value each run logged; click through a run for its history.")
    return render(request, "experiments/mlflow_detail.html", {
        "experiment": experiment, "page": page, "runs": rows, "metric_names": metric_names, "filters": filters,
        "error": error, "statuses": STATUSES, "figure": figure,
    }, status=400 if error else 200)


def _metric_charts(run: Run) -> list[tuple[str, dict]]:
    keys = sorted(run.latest_metrics or {})[:MAX_CHARTS]
    figures = []
    for index, key in enumerate(keys):
        points = list(MetricPoint.objects.filter(run=run, key=key).order_by("step", "timestamp")
                      .values_list("step", "value")[:MAX_POINTS_PER_CHART])
        steps = [p[0] for p in points]
        values = [p[1] if p[1] == p[1] and abs(p[1]) != float("inf") else None for p in points]
        figure = core_charts.lines(steps, {key: values}, title=f"{key} by step", x_title="step",
                                   y_title=f"{key} (as logged)",
                                   caption="The metric as the run logged it, step by step.")
        figures.append((f"metric-chart-{index}", figure))
    return figures


def _artifact_tree(files: list[ArtifactFile], root: str) -> list[dict]:
    """Rows of an indented tree: folders once, files with their size and sha256."""
    rows, seen = [], set()
    for record in files:
        relative = record.path[len(root) + 1:] if record.path.startswith(root + "/") else record.path
        parts = relative.split("/")
        for depth in range(len(parts) - 1):
            folder = "/".join(parts[:depth + 1])
            if folder not in seen:
                seen.add(folder)
                rows.append({"name": parts[depth], "depth": depth, "is_dir": True})
        rows.append({"name": parts[-1], "depth": len(parts) - 1, "is_dir": False, "record": record})
    return rows


def mlflow_run_detail(request, run: Run):
    require_viewer(request)
    logged_models = list(run.logged_models.prefetch_related("model_versions__model").order_by("created_ms"))
    run_files = list(run.artifact_files.order_by("path")[:2000])
    models = [{"model": m, "tree": _artifact_tree(list(m.artifact_files.order_by("path")[:2000]), m.artifact_root),
               "versions": list(m.model_versions.all())} for m in logged_models]
    tags = sorted((run.tags or {}).items())
    return render(request, "experiments/mlflow_run.html", {
        "run": run, "experiment": run.experiment,
        "metrics": sorted((run.latest_metrics or {}).items()),
        "charts": _metric_charts(run),
        "params": sorted((run.params or {}).items()),
        "user_tags": [t for t in tags if not t[0].startswith("mlflow.")],
        "system_tags": [t for t in tags if t[0].startswith("mlflow.")],
        "inputs": list(run.inputs.select_related("dataset_version__dataset")),
        "tree": _artifact_tree(run_files, run.artifact_root),
        "logged_models": models,
        "versions": list(run.model_versions.select_related("model")),
    })


def mlflow_compare(request, experiment: Experiment, ids: list[int]):
    require_viewer(request)
    runs = list(experiment.runs.filter(pk__in=ids)) if 2 <= len(ids) <= 5 else []
    error = "" if runs and len(runs) == len(set(ids)) else "Pick between 2 and 5 runs of this experiment to compare."
    metric_names = sorted({k for r in runs for k, v in (r.metrics or {}).items() if v is not None})
    param_names = sorted({k for r in runs for k in (r.params or {})})
    figure = core_charts.grouped_bars(
        metric_names, {r.display_name: [(r.metrics or {}).get(m) for m in metric_names] for r in runs},
        title="Latest metric values side by side", x_title="metric", y_title="value (as logged)",
        caption="The runs' latest values, metric by metric: compare bars of one group.") if runs and metric_names and not error else None
    return render(request, "experiments/mlflow_compare.html", {
        "experiment": experiment, "runs": runs if not error else [], "error": error, "metric_names": metric_names,
        "param_names": param_names, "figure": figure,
    }, status=400 if error else 200)


def run_artifact_download(request, pk: int, path: str):
    """A file of a run (or of a model it logged), for signed-in readers of the run page."""
    require_viewer(request)
    run = get_object_or_404(Run, pk=pk)
    record = ArtifactFile.objects.select_related("logged_model").filter(path=path).first()
    if record is None:
        raise Http404("No such artifact.")
    belongs = record.run_id == run.pk or (record.logged_model_id and record.logged_model.source_run_id == run.pk)
    if not belongs:
        raise PermissionDenied("That file belongs to another run.")
    response = StreamingHttpResponse(artifact_chunks(record), content_type="application/octet-stream")
    response["Content-Length"] = str(record.size)
    response["Content-Disposition"] = f'attachment; filename="{path.rsplit("/", 1)[-1].replace(chr(34), "")}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
