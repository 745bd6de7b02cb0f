"""What the datasets API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from apps.core.openapi import JobBody

from .models import ValidationStatus, VersionSource, VersionStatus
from .selectors import SORTS


class DatasetBody(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField())
    default_target = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_null=True, help_text="The owner's username.")
    latest_version = serializers.IntegerField(allow_null=True, help_text="Id of the newest version.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Dataset"


class DatasetListItem(DatasetBody):
    version_count = serializers.IntegerField()

    class Meta:
        ref_name = "DatasetListItem"


class VersionSummary(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    format = serializers.ChoiceField(choices=["csv", "parquet"])
    rows = serializers.IntegerField(allow_null=True, help_text="Null until the file was read.")
    column_count = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(choices=VersionStatus.choices)
    error = serializers.CharField(allow_blank=True)
    validation_status = serializers.ChoiceField(choices=ValidationStatus.choices)
    usable_for_training = serializers.BooleanField()
    source = serializers.ChoiceField(choices=VersionSource.choices)
    note = serializers.CharField(allow_blank=True)
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    url = serializers.CharField()

    class Meta:
        ref_name = "DatasetVersionSummary"


class DatasetDetail(DatasetBody):
    versions = VersionSummary(many=True)

    class Meta:
        ref_name = "DatasetDetail"


class VersionUploaded(VersionSummary):
    job = JobBody(allow_null=True, help_text="The profiling job (null when the same bytes were already a version).")
    created = serializers.BooleanField(help_text="False when these bytes were already a version of the dataset.")

    class Meta:
        ref_name = "DatasetVersionUploaded"


class ColumnBody(serializers.Serializer):
    name = serializers.CharField()
    dtype = serializers.CharField(allow_null=True)
    role = serializers.CharField(allow_null=True)
    nullable = serializers.BooleanField(allow_null=True)
    stats = serializers.DictField(help_text="The column's profile: counts, quantiles or category frequencies.")


class ValidationBody(serializers.Serializer):
    status = serializers.ChoiceField(choices=ValidationStatus.choices)
    results = serializers.ListField(child=serializers.DictField())
    overridden = serializers.BooleanField()
    override_reason = serializers.CharField(allow_blank=True)


class VersionDetail(VersionSummary):
    dataset = serializers.IntegerField()
    columns = ColumnBody(many=True)
    validation = ValidationBody()

    class Meta:
        ref_name = "DatasetVersionDetail"


@extend_schema_field(OpenApiTypes.BINARY)
class UploadedFile(serializers.FileField):
    """A file part of a multipart body (drf-spectacular would describe a FileField as the URL it answers with)."""


class VersionUpload(serializers.Serializer):
    """A file arrives only as a multipart part; `note` is checked as the form checks it."""

    file = UploadedFile()
    note = serializers.CharField(required=False, max_length=500)

    class Meta:
        ref_name = "VersionUpload"


LIST_PARAMETERS = [
    OpenApiParameter("q", str, description="Words to find in the name, description or tags."),
    OpenApiParameter("sort", str, enum=list(SORTS), description="Order of the list (unknown values: `-updated`)."),
]
