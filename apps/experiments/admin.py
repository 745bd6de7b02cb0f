from django.contrib import admin

from apps.core.admin import EvidenceAdmin

from .models import Experiment, Run


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "target", "task_type", "primary_metric", "created_by", "created_at")
    list_filter = ("task_type",)
    search_fields = ("name", "target", "dataset__name")
    list_select_related = ("dataset", "created_by")


@admin.register(Run)
class RunAdmin(EvidenceAdmin):
    list_display = ("__str__", "algorithm", "dataset_version", "source", "created_by", "created_at")
    list_filter = ("algorithm", "source")
    search_fields = ("experiment__name", "algorithm", "artifact_sha256")
    list_select_related = ("experiment", "dataset_version__dataset", "created_by")
    exclude = ("charts", "importances", "log")
    readonly_fields = [f.name for f in Run._meta.fields if f.name not in ("charts", "importances", "log")]
    keep_instead = "Model versions were registered from it."

    def is_evidence(self, obj) -> bool:
        return obj.model_versions.exists()

    def has_add_permission(self, request):
        return False
