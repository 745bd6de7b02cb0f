from django.contrib import admin
from django.utils import timezone

from apps.core.admin import EvidenceAdmin
from apps.core.services import audit_record

from .models import MaturitySettings, MaturitySnapshot, PipelineChange, PipelinePolicy, PipelineStep


@admin.register(MaturitySettings)
class MaturitySettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "retraining_period_days", "drift_period_days", "performance_period_days",
                    "releases_window_days", "min_releases")

    def has_add_permission(self, request):
        return not MaturitySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, action="maturity_settings.update", obj=obj,
                     after={f: form.cleaned_data.get(f) for f in form.changed_data})


@admin.register(PipelinePolicy)
class PipelinePolicyAdmin(admin.ModelAdmin):
    list_display = ("model", "auto_approve_staging", "updated_by", "updated_at")
    list_filter = ("auto_approve_staging",)
    readonly_fields = ("updated_by", "updated_at")

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        audit_record(actor=request.user, action="pipeline_policy.update", obj=obj,
                     after={"auto_approve_staging": obj.auto_approve_staging})


class StepInline(admin.TabularInline):
    model = PipelineStep
    extra = 0
    can_delete = False
    readonly_fields = ("key", "order", "status", "job", "detail", "started_at", "finished_at")


@admin.register(PipelineChange)
class PipelineChangeAdmin(EvidenceAdmin):
    list_display = ("__str__", "status", "created_by", "created_at")
    list_filter = ("status", "model")
    inlines = [StepInline]
    readonly_fields = [f.name for f in PipelineChange._meta.fields]


@admin.register(MaturitySnapshot)
class MaturitySnapshotAdmin(admin.ModelAdmin):
    list_display = ("model", "taken_at", "level", "progress", "trigger")
    list_filter = ("trigger", "level", "model")
    readonly_fields = [f.name for f in MaturitySnapshot._meta.fields]
