from django.contrib import admin

from apps.core.admin import EvidenceAdmin

from .models import Dataset, DatasetVersion


class VersionInline(admin.TabularInline):
    model = DatasetVersion
    fields = ("number", "original_filename", "rows", "column_count", "validation_status", "status", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "latest_version", "default_target", "updated_at")
    search_fields = ("name", "description")
    list_select_related = ("owner", "latest_version")
    fields = ("name", "description", "owner", "tags", "default_target", "validation_rules")
    inlines = [VersionInline]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(EvidenceAdmin):
    list_display = ("__str__", "rows", "column_count", "format", "validation_status", "status", "source", "created_by", "created_at")
    list_filter = ("validation_status", "status", "source", "format")
    search_fields = ("dataset__name", "sha256", "original_filename", "note")
    list_select_related = ("dataset", "created_by")
    exclude = ("profile", "reference")
    readonly_fields = (
        "dataset", "number", "file", "original_filename", "sha256", "size_bytes", "format", "rows", "column_count",
        "schema", "validation", "validation_status", "status", "error", "source", "created_by", "created_at",
        "override_reason", "overridden_by", "overridden_at",
    )
    keep_instead = "Runs were trained on it; their lineage points here."

    def is_evidence(self, obj) -> bool:
        return obj.runs.exists()
