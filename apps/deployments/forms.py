from __future__ import annotations

from django import forms

from apps.registry.models import ModelVersion

from .models import Environment

_CHOOSE = {"required": "Choose a model version and an environment.",
           "invalid_choice": "Choose a model version and an environment."}


class DeployForm(forms.Form):
    """The deploy page's post; which stages an environment accepts, and who may deploy, the service decides."""

    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.select_related("model"), error_messages=_CHOOSE)
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(), error_messages=_CHOOSE)
    note = forms.CharField(max_length=300, required=False, strip=True)

    def error_text(self) -> str:
        """Every distinct message, in one line, for the page's flash message."""
        return " ".join(dict.fromkeys(m for ms in self.errors.values() for m in ms))
