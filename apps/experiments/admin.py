from django.contrib import admin

from .models import Experiment, Run


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "target", "task_type", "primary_metric", "created_by", "created_at")
    list_filter = ("task_type",)
    search_fields = ("name", "target", "dataset__name")
    list_select_related = ("dataset", "created_by")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("__str__", "algorithm", "dataset_version", "source", "created_by", "created_at")
    list_filter = ("algorithm", "source")
    search_fields = ("experiment__name", "algorithm", "artifact_sha256")
    list_select_related = ("experiment", "dataset_version__dataset", "created_by")
    exclude = ("charts", "importances", "log")
    readonly_fields = [f.name for f in Run._meta.fields if f.name not in ("charts", "importances", "log")]

    def has_add_permission(self, request):
        return False
