from django.contrib import admin

from apps.core.admin import EvidenceAdmin

from .models import BatchScore, Deployment, Environment, PredictionLog


@admin.register(Environment)
class EnvironmentAdmin(admin.ModelAdmin):
    list_display = ("name", "required_stage", "is_production", "max_instances", "order")
    list_editable = ("required_stage", "is_production", "max_instances", "order")


@admin.register(Deployment)
class DeploymentAdmin(EvidenceAdmin):
    list_display = ("model_version", "environment", "status", "is_rollback", "deployed_by", "deployed_at", "retired_at")
    list_filter = ("status", "environment", "is_rollback")
    list_select_related = ("model_version__model", "environment", "deployed_by")
    readonly_fields = [f.name for f in Deployment._meta.fields]
    keep_instead = "Retire it by deploying another version or rolling back from its page."

    def has_add_permission(self, request):
        return False


@admin.register(PredictionLog)
class PredictionLogAdmin(EvidenceAdmin):
    list_display = ("request_id", "deployment", "created_at", "prediction", "latency_ms", "label", "source")
    list_filter = ("source",)
    search_fields = ("request_id",)
    list_select_related = ("deployment__model_version__model", "deployment__environment")
    show_full_result_count = False
    readonly_fields = [f.name for f in PredictionLog._meta.fields]
    keep_instead = "Old prediction logs leave with their month's partition (retention)."

    def has_add_permission(self, request):
        return False


@admin.register(BatchScore)
class BatchScoreAdmin(admin.ModelAdmin):
    list_display = ("__str__", "input_name", "rows", "created_by", "created_at")
    readonly_fields = [f.name for f in BatchScore._meta.fields]
