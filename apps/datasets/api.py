from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.models import Job
from apps.core.pagination import (
    API_DEFAULT_LIMIT,
    LIST_PARAMETERS,
    SORTED_LIST_PARAMETERS,
    api_list_response,
    api_sorted_page,
    keyset_page,
    with_next_link,
)
from apps.core.schema import error

from . import openapi as docs
from .models import Dataset, DatasetVersion, VersionSource
from .selectors import SORTS, dataset_list
from .services import UploadTooLarge, dataset_create, dataset_version_upload


def version_summary(v: DatasetVersion) -> dict:
    return {
        "id": v.pk,
        "number": v.number,
        "sha256": v.sha256,
        "size_bytes": v.size_bytes,
        "format": v.format,
        "rows": v.rows,
        "column_count": v.column_count,
        "status": v.status,
        "error": v.error,
        "validation_status": v.validation_status,
        "usable_for_training": v.usable_for_training,
        "source": v.source,
        "note": v.note,
        "created_by": v.created_by.username if v.created_by else None,
        "created_at": v.created_at.isoformat(),
        "url": v.get_absolute_url(),
    }


def dataset_body(d: Dataset) -> dict:
    return {
        "id": d.pk,
        "name": d.name,
        "description": d.description,
        "tags": d.tags,
        "default_target": d.default_target,
        "owner": d.owner.username if d.owner else None,
        "latest_version": d.latest_version_id,
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }


class DatasetIn(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, default=list)
    default_target = serializers.CharField(required=False, allow_blank=True, default="")


class UploadIn(serializers.Serializer):
    """The upload's fields besides the file, which the service judges itself (size, format, header)."""

    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class DatasetListApi(APIView):
    @extend_schema(summary="List datasets, a page at a time", parameters=[
        OpenApiParameter("q", str, description="only datasets whose name, description or tags contain this"),
        OpenApiParameter("sort", str, enum=list(SORTS), description="the order (default name)"),
        *SORTED_LIST_PARAMETERS,
    ], responses={200: docs.DatasetListItem(many=True)})
    def get(self, request):
        datasets = dataset_list(query=request.query_params.get("q", ""), sort=request.query_params.get("sort", "name"))
        rows, next_url = api_sorted_page(request, datasets)
        return with_next_link(Response([dataset_body(d) | {"version_count": d.version_count} for d in rows]),
                              next_url)

    @extend_schema(request=DatasetIn, summary="Create a dataset", responses={201: docs.DatasetBody})
    def post(self, request):
        data = DatasetIn(data=request.data)
        data.is_valid(raise_exception=True)
        dataset = dataset_create(user=request.user, **data.validated_data)
        return Response(dataset_body(dataset), status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    @extend_schema(summary="A dataset with its newest versions (versions_next: the rest, page by page)",
                   responses={200: docs.DatasetDetail})
    def get(self, request, pk: int):
        dataset = get_object_or_404(Dataset.objects.select_related("owner"), pk=pk)
        page = keyset_page(_versions_of(dataset), size=API_DEFAULT_LIMIT)
        next_url = None
        if page.older is not None:
            next_url = request.build_absolute_uri(reverse("api:dataset_version_upload", args=[dataset.pk])) + (
                f"?before={page.older}")
        return Response(dataset_body(dataset) | {"versions": [version_summary(v) for v in page.rows],
                                                 "versions_next": next_url})


def _versions_of(dataset: Dataset):
    return dataset.versions.select_related("created_by").defer("profile", "reference", "schema")


class DatasetVersionUploadApi(APIView):
    # checked before DRF parses the body, so a refused caller's file never reaches disk
    # (the service checks the same capability for every other caller)
    required_capabilities = {"POST": "upload_dataset"}
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(summary="A dataset's versions, newest first", parameters=LIST_PARAMETERS,
                   responses={200: docs.VersionSummary(many=True)})
    def get(self, request, pk: int):
        dataset = get_object_or_404(Dataset, pk=pk)
        return api_list_response(request, _versions_of(dataset), version_summary)

    @extend_schema(
        summary="Upload a file as a new version (multipart `file`, optional `note`)",
        request={"multipart/form-data": docs.VersionUpload},
        responses={201: docs.VersionUploaded, 200: docs.VersionUploaded,
                   413: error("The file is larger than DATASET_MAX_UPLOAD_BYTES")},
    )
    def post(self, request, pk: int):
        dataset = get_object_or_404(Dataset, pk=pk)
        uploaded = request.FILES.get("file")  # parses the body; our upload handler may stop it
        fields = UploadIn(data=request.data)
        fields.is_valid(raise_exception=True)
        try:
            version, created = dataset_version_upload(
                user=request.user,
                dataset=dataset,
                uploaded=uploaded,
                note=fields.validated_data["note"],
                source=VersionSource.API,
                upload_error=getattr(request._request, "upload_error", None),
            )
        except UploadTooLarge as exc:
            return Response(
                {"error": {"code": "too_large", "message": exc.message, "fields": {"file": exc.message}}},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        job = Job.objects.filter(target_id=version.pk, kind="datasets.profile").order_by("-id").first()
        body = version_summary(version) | {"job": job.as_dict() if job else None, "created": created}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class DatasetVersionDetailApi(APIView):
    @extend_schema(summary="A version's schema, profile and validation results",
                   responses={200: docs.VersionDetail})
    def get(self, request, pk: int):
        v = get_object_or_404(DatasetVersion.objects.select_related("dataset", "created_by").defer("reference"), pk=pk)
        columns = []
        stats = (v.profile or {}).get("columns", {})
        for c in v.schema:
            columns.append(
                {
                    "name": c["name"],
                    "dtype": c.get("dtype"),
                    "role": c.get("role"),
                    "nullable": c.get("nullable"),
                    "stats": stats.get(c["name"], {}),
                }
            )
        return Response(
            version_summary(v)
            | {
                "dataset": v.dataset_id,
                "columns": columns,
                "validation": {
                    "status": v.validation_status,
                    "results": (v.validation or {}).get("results", []),
                    "overridden": v.is_overridden,
                    "override_reason": v.override_reason,
                },
            }
        )
