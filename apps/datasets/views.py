from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import roles
from apps.core.jobs import JobFailed
from apps.core.messages import error_messages, error_text
from apps.core.services import jobs_for
from apps.core.views import require_viewer
from apps.ml.errors import DataFileError
from apps.ml.profile import ROLES

from . import charts, selectors
from .models import Dataset, DatasetVersion, VersionStatus
from .services import (
    dataset_create,
    dataset_version_mark_failed,
    dataset_version_override,
    dataset_version_set_role,
    dataset_version_upload,
    max_upload_bytes,
    version_local_path,
)


def dataset_list(request):
    require_viewer(request)
    query, sort = request.GET.get("q", ""), request.GET.get("sort", "-updated")
    page = Paginator(selectors.dataset_list(query=query, sort=sort), 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": query, "sort": sort, "can_upload": roles.can(request.user, "upload_dataset")}
    template = "datasets/list.html#rows" if request.htmx and request.htmx.target == "dataset-rows" else "datasets/list.html"
    return render(request, template, context)


def dataset_new(request):
    roles.require(request.user, "upload_dataset")
    form = {"name": "", "description": "", "tags": "", "default_target": ""}
    errors = {}
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in form}
        try:
            dataset = dataset_create(user=request.user, **form)
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, f"Dataset {dataset.name!r} created; upload its first version.")
            return redirect(dataset)
    return render(request, "datasets/new.html", {"form": form, "errors": errors}, status=400 if errors else 200)


def dataset_detail(request, pk: int):
    require_viewer(request)
    dataset = get_object_or_404(Dataset.objects.select_related("owner"), pk=pk)
    versions = list(selectors.versions_light(dataset))
    return render(
        request,
        "datasets/detail.html",
        {
            "dataset": dataset,
            "versions": versions,
            "can_upload": roles.can(request.user, "upload_dataset"),
            "max_upload": max_upload_bytes(),
        },
    )


@require_POST
def dataset_upload(request, pk: int):
    dataset = get_object_or_404(Dataset, pk=pk)
    roles.require(request.user, "upload_dataset")
    uploaded = request.FILES.get("file")  # parses the body; our upload handler may stop it
    error = getattr(request, "upload_error", None)
    if error is None:
        try:
            version, created = dataset_version_upload(
                user=request.user, dataset=dataset, uploaded=uploaded, note=request.POST.get("note", "")
            )
        except DataFileError as exc:
            error = exc.message
        except ValidationError as exc:
            error = error_text(exc)
    if error is not None:
        context = {"dataset": dataset, "upload_error": error, "max_upload": max_upload_bytes(), "can_upload": True}
        template = "datasets/detail.html#upload" if request.htmx else "datasets/detail.html"
        if not request.htmx:
            context["versions"] = list(selectors.versions_light(dataset))
        return render(request, template, context, status=400)
    if not created:
        messages.info(request, f"These bytes are already {version} (same sha256); no new version was made.")
    url = version.get_absolute_url()
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def version_detail(request, pk: int):
    require_viewer(request)
    version = get_object_or_404(
        DatasetVersion.objects.select_related("dataset", "created_by", "overridden_by").defer("reference"), pk=pk
    )
    job = jobs_for(version).first()
    if version.status == VersionStatus.PROCESSING and job is not None and job.is_finished and job.status != "succeeded":
        # the job was cancelled, or failed outside its handler (a lost worker): say so instead of spinning
        reason = job.error or f"the profiling job was {job.status}"
        dataset_version_mark_failed(version_id=version.pk, error=reason)
        version.status, version.error = VersionStatus.FAILED, reason
    if request.htmx and request.htmx.target == "version-status":
        response = render(request, "datasets/version.html#status", {"version": version, "job": job})
        if version.status != VersionStatus.PROCESSING or (job and job.is_finished):
            response["HX-Refresh"] = "true"
        return response
    profile_columns = (version.profile or {}).get("columns", {})
    column_rows = []
    for index, column in enumerate(version.schema):
        stats = profile_columns.get(column["name"])
        figure = charts.column_figure(column["name"], stats) if stats and index < charts.MAX_COLUMN_CHARTS else None
        column_rows.append(
            {"schema": column, "stats": stats, "figure": figure, "index": index, "chart_id": f"col-chart-{index}"}
        )
    previous = version.dataset.versions.filter(number__lt=version.number).order_by("-number").first()
    return render(
        request,
        "datasets/version.html",
        {
            "version": version,
            "dataset": version.dataset,
            "job": job,
            "columns": column_rows,
            "missing_figure": charts.missing_figure(version.profile or {}),
            "roles_choices": ROLES,
            "previous": previous,
            "can_edit": roles.can(request.user, "upload_dataset"),
            "can_override": roles.can(request.user, "override_validation"),
        },
    )


@require_POST
def version_set_role(request, pk: int):
    version = get_object_or_404(DatasetVersion, pk=pk)
    try:
        dataset_version_set_role(
            user=request.user, version=version, column=request.POST.get("column", ""), role=request.POST.get("role", "")
        )
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Role of {request.POST.get('column')!r} set to {request.POST.get('role')}; profiling again.")
    return redirect(version)


@require_POST
def version_override(request, pk: int):
    version = get_object_or_404(DatasetVersion, pk=pk)
    try:
        dataset_version_override(user=request.user, version=version, reason=request.POST.get("reason", ""))
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"{version} may now be used for training; the override is audited.")
    return redirect(version)


def version_download(request, pk: int):
    require_viewer(request)
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset"), pk=pk)
    try:
        with version_local_path(version) as path:  # checks the sha256 before sending a byte
            handle = open(path, "rb")  # noqa: SIM115 - FileResponse closes it
    except JobFailed as exc:
        messages.error(request, str(exc))
        return redirect(version)
    filename = f"{version.dataset.name}-v{version.number}.{version.format}".replace(" ", "_")
    return FileResponse(handle, as_attachment=True, filename=filename)


def version_compare(request, pk: int):
    require_viewer(request)
    dataset = get_object_or_404(Dataset, pk=pk)
    versions = list(dataset.versions.only("id", "number", "status", "created_at"))
    ids = [v.pk for v in versions]
    try:
        a_id = int(request.GET.get("a") or (ids[1] if len(ids) > 1 else 0))
        b_id = int(request.GET.get("b") or (ids[0] if ids else 0))
    except ValueError:
        a_id = b_id = 0
    context = {"dataset": dataset, "versions": versions, "a_id": a_id, "b_id": b_id}
    if a_id in ids and b_id in ids:
        a = DatasetVersion.objects.get(pk=a_id)
        b = DatasetVersion.objects.get(pk=b_id)
        comparison = selectors.version_comparison(a, b)
        for index, feature in enumerate(comparison["features"]):
            feature["figure"] = charts.overlay_figure(feature["name"], feature)
            feature["chart_id"] = f"shift-chart-{index}"
        context.update({"a": a, "b": b, "comparison": comparison})
    elif request.GET.get("a") or request.GET.get("b"):
        context["error"] = "Pick two versions of this dataset to compare."
    return render(request, "datasets/compare.html", context)

