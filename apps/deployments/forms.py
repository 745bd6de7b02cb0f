from __future__ import annotations

from django import forms

from apps.registry.models import ModelVersion

from .models import Environment


class DeployForm(forms.Form):
    """The deploy page's post; which stages an environment accepts, and who may deploy, the service decides."""

    model_version = forms.ModelChoiceField(queryset=ModelVersion.objects.select_related("model"),
                                           error_messages={"required": "Choose a model version.",
                                                           "invalid_choice": "That model version does not exist."})
    environment = forms.ModelChoiceField(queryset=Environment.objects.all(),
                                         error_messages={"required": "Choose an environment.",
                                                         "invalid_choice": "That environment does not exist."})
    note = forms.CharField(max_length=300, required=False, strip=True)
