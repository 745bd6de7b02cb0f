from django import forms
from django.contrib import admin

from apps.core.admin import EvidenceAdmin
from apps.ml.mlflow_model import is_allowable_type_name

from .models import ModelAlias, ModelVersion, PromotionRequest, RegisteredModel, StageTransition, TrustedType


@admin.register(RegisteredModel)
class RegisteredModelAdmin(admin.ModelAdmin):
    list_display = ("name", "task_type", "primary_metric", "threshold_metric", "threshold_value", "max_regression",
                    "require_staging_first", "allow_override", "updated_at")
    list_filter = ("task_type", "allow_override", "require_staging_first")
    search_fields = ("name", "description")
    fieldsets = (
        (None, {"fields": ("name", "description", "owner", "task_type", "primary_metric")}),
        ("Gate policy", {"fields": ("threshold_metric", "threshold_value", "max_regression",
                                    "require_staging_first", "allow_override")}),
    )
    readonly_fields = ("task_type", "primary_metric")


@admin.register(ModelVersion)
class ModelVersionAdmin(EvidenceAdmin):
    list_display = ("__str__", "stage", "run", "created_by", "created_at")
    list_filter = ("stage", "model")
    search_fields = ("model__name", "artifact_sha256")
    list_select_related = ("model", "run__experiment", "created_by")
    readonly_fields = ("model", "version", "run", "artifact_name", "artifact_sha256", "signature", "metrics",
                       "classes", "stage", "created_by", "created_at", "stage_changed_at")
    keep_instead = "A version leaves service when another replaces it; a replaced production version is archived."


@admin.register(PromotionRequest)
class PromotionRequestAdmin(EvidenceAdmin):
    list_display = ("__str__", "target_stage", "status", "requested_by", "on_behalf_of", "decided_by", "created_at")
    list_filter = ("status", "target_stage")
    list_select_related = ("model_version__model", "requested_by", "on_behalf_of", "decided_by")
    readonly_fields = [f.name for f in PromotionRequest._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(StageTransition)
class StageTransitionAdmin(EvidenceAdmin):
    list_display = ("model_version", "from_stage", "to_stage", "actor", "created_at")
    list_filter = ("to_stage",)
    list_select_related = ("model_version__model", "actor")
    readonly_fields = [f.name for f in StageTransition._meta.fields]

    def has_add_permission(self, request):
        return False


class TrustedTypeForm(forms.ModelForm):
    class Meta:
        model = TrustedType
        fields = ("name", "note")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not is_allowable_type_name(name):
            raise forms.ValidationError("Only scikit-learn, numpy and scipy types can be trusted "
                                        "(a dotted name starting with sklearn., numpy. or scipy.).")
        return name


@admin.register(TrustedType)
class TrustedTypeAdmin(admin.ModelAdmin):
    """The allow-list for external skops artifacts, beyond the catalog's own types; every change is audited."""

    form = TrustedTypeForm
    list_display = ("name", "note", "added_by", "added_at")
    search_fields = ("name",)

    def has_change_permission(self, request, obj=None):
        return False  # remove and add again, so each change is one audited event

    def save_model(self, request, obj, form, change):
        from .external import trusted_type_add

        saved = trusted_type_add(user=request.user, name=obj.name, note=obj.note)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        from .external import trusted_type_remove

        trusted_type_remove(user=request.user, entry=obj)

    def delete_queryset(self, request, queryset):
        for entry in queryset:
            self.delete_model(request, entry)


@admin.register(ModelAlias)
class ModelAliasAdmin(admin.ModelAdmin):
    list_display = ("__str__", "version", "set_by", "set_at")
    list_select_related = ("model", "version__model", "set_by")
    readonly_fields = [f.name for f in ModelAlias._meta.fields]

    def has_add_permission(self, request):
        return False
