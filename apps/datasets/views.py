from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import roles
from apps.core.jobs import JobFailed
from apps.core.messages import error_messages, error_text
from apps.core.pagination import keyset_page, page_from_request
from apps.core.services import jobs_for
from apps.core.views import require_viewer
from apps.ml.errors import DataFileError
from apps.ml.profile import ROLES

from . import charts, selectors
from .forms import ColumnRoleForm, DatasetForm, OverrideForm, VersionUploadForm
from .models import Dataset, DatasetVersion, VersionStatus
from .services import (
    UploadTooLarge,
    dataset_create,
    dataset_version_mark_failed,
    dataset_version_override,
    dataset_version_set_role,
    dataset_version_upload,
    max_upload_bytes,
    may_upload,
    version_local_path,
)

VERSIONS_PER_PAGE = 50


def dataset_list(request):
    require_viewer(request)
    query, sort = request.GET.get("q", ""), request.GET.get("sort", "-updated")
    page = Paginator(selectors.dataset_list(query=query, sort=sort), 50).get_page(request.GET.get("page"))
    context = {"page": page, "q": query, "sort": sort, "can_upload": may_upload(request.user)}
    template = "datasets/list.html#rows" if request.htmx and request.htmx.target == "dataset-rows" else "datasets/list.html"
    return render(request, template, context)


def dataset_new(request):
    form = DatasetForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_create(user=request.user, **form.cleaned_data)
        except ValidationError as exc:
            for field, errors in error_messages(exc).items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Dataset {dataset.name!r} created; upload its first version.")
            return redirect(dataset)
    if not may_upload(request.user):  # the form is shown only to those whose datasets the service accepts
        raise PermissionDenied("Your role does not allow this (upload dataset).")
    return render(request, "datasets/new.html", {"form": form}, status=400 if form.errors else 200)


def dataset_detail(request, pk: int):
    require_viewer(request)
    dataset = get_object_or_404(Dataset.objects.select_related("owner"), pk=pk)
    page = page_from_request(request, selectors.versions_light(dataset), size=VERSIONS_PER_PAGE)
    return render(
        request,
        "datasets/detail.html",
        {
            "dataset": dataset,
            "versions": page.rows,
            "page": page,
            "can_upload": may_upload(request.user),
            "max_upload": max_upload_bytes(),
        },
    )


@require_POST
def dataset_upload(request, pk: int):
    dataset = get_object_or_404(Dataset, pk=pk)
    form = VersionUploadForm(request.POST, request.FILES)  # reading the body: our upload handler may stop it
    error = None
    if form.is_valid():
        try:
            version, created = dataset_version_upload(
                user=request.user, dataset=dataset, uploaded=form.cleaned_data["file"],
                note=form.cleaned_data["note"], upload_error=getattr(request, "upload_error", None),
            )
        except (UploadTooLarge, DataFileError) as exc:
            error = exc.message
        except ValidationError as exc:
            error = error_text(exc)
    else:
        error = " ".join(m for errors in form.errors.values() for m in errors)
    if error is not None:
        context = {"dataset": dataset, "upload_error": error, "max_upload": max_upload_bytes(), "can_upload": True}
        template = "datasets/detail.html#upload" if request.htmx else "datasets/detail.html"
        if not request.htmx:
            page = keyset_page(selectors.versions_light(dataset), size=VERSIONS_PER_PAGE)
            context.update(versions=page.rows, page=page)
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
            "can_edit": may_upload(request.user),
            "can_override": roles.can(request.user, "override_validation"),
            "override_form": OverrideForm(),
        },
    )


@require_POST
def version_set_role(request, pk: int):
    version = get_object_or_404(DatasetVersion, pk=pk)
    form = ColumnRoleForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        column, role = form.cleaned_data["column"], form.cleaned_data["role"]
        dataset_version_set_role(user=request.user, version=version, column=column, role=role)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"Role of {column!r} set to {role}; profiling again.")
    return redirect(version)


@require_POST
def version_override(request, pk: int):
    version = get_object_or_404(DatasetVersion, pk=pk)
    form = OverrideForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors)
        dataset_version_override(user=request.user, version=version, reason=form.cleaned_data["reason"])
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

