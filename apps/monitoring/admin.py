from django.contrib import admin

from apps.core.admin import EvidenceAdmin

from .models import Alert, DriftReport, MonitorPolicy, Retraining


@admin.register(MonitorPolicy)
class MonitorPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled", "schedule_minutes", "window_hours", "drift_share", "retrain_policy",
                    "last_run_at")
    list_filter = ("enabled", "retrain_policy", "environment")
    list_select_related = ("model", "environment")


@admin.register(DriftReport)
class DriftReportAdmin(EvidenceAdmin):
    list_display = ("policy", "window_end", "rows", "status", "drift_share")
    list_filter = ("status",)
    list_select_related = ("policy__model", "policy__environment")
    exclude = ("features", "prediction_drift")
    readonly_fields = [f.name for f in DriftReport._meta.fields if f.name not in ("features", "prediction_drift")]


@admin.register(Alert)
class AlertAdmin(EvidenceAdmin):
    list_display = ("__str__", "kind", "status", "opened_at", "resolved_at")
    list_filter = ("status", "kind")
    list_select_related = ("policy__model", "policy__environment")
    readonly_fields = [f.name for f in Alert._meta.fields]


@admin.register(Retraining)
class RetrainingAdmin(EvidenceAdmin):
    list_display = ("__str__", "trigger", "status", "run", "model_version", "promotion", "created_at")
    list_filter = ("status", "trigger")
    readonly_fields = [f.name for f in Retraining._meta.fields]
