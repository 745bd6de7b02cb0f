"""The policy settings page's form: it parses and validates (with the model's own rules);
``services.policy_update`` checks who may and saves with an audit event."""

from __future__ import annotations

from django import forms

from .models import MonitorPolicy

POLICY_FIELDS = [
    "enabled", "schedule_minutes", "window_hours", "window_predictions", "min_rows",
    "numeric_method", "numeric_threshold", "categorical_method", "categorical_threshold", "drift_share",
    "alert_emails", "webhook_url", "retrain_policy", "retrain_every_days", "performance_metric",
    "performance_threshold", "include_production_rows", "include_interactive",
]


class MonitorPolicyForm(forms.ModelForm):
    class Meta:
        model = MonitorPolicy
        fields = POLICY_FIELDS
        widgets = {
            "alert_emails": forms.TextInput(attrs={"placeholder": "a@example.com, b@example.com"}),
            "webhook_url": forms.URLInput(attrs={"placeholder": "https://hooks.example.com/…"}),
            "numeric_threshold": forms.NumberInput(attrs={"placeholder": "default", "step": "any"}),
            "categorical_threshold": forms.NumberInput(attrs={"placeholder": "default", "step": "any"}),
            "drift_share": forms.NumberInput(attrs={"step": "any"}),
            "performance_threshold": forms.NumberInput(attrs={"step": "any"}),
        }

    def __init__(self, *args, may_set_webhook: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not may_set_webhook:
            # not shown, not read: only admins point the worker at a URL
            del self.fields["webhook_url"]
        self.fields["performance_metric"].widget.attrs["placeholder"] = self.instance.model.primary_metric

    def changes(self) -> dict:
        """The posted values of the fields this form has (what the service applies)."""
        return {name: self.cleaned_data[name] for name in self.fields}
