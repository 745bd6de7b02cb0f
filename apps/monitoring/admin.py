from django.contrib import admin

from apps.core.admin import EvidenceAdmin

from .models import Alert, DriftReport, MonitorPolicy, Retraining
from .services import policy_update


@admin.register(MonitorPolicy)
class MonitorPolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "enabled", "schedule_minutes", "window_hours", "drift_share", "retrain_policy",
                    "last_run_at")
    list_filter = ("enabled", "retrain_policy", "environment")
    list_select_related = ("model", "environment")
    readonly_fields = ("changed_by", "last_run_at")

    def save_model(self, request, obj, form, change):
        # an admin's change is the same change as on the settings page: through the service, which
        # records who made it (shown on the monitoring page) and audits the values before and after
        if not change:
            obj.changed_by = request.user
            return super().save_model(request, obj, form, change)
        values = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if values:
            policy_update(user=request.user, policy=obj, values=values)


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
