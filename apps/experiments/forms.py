"""The experiment pages' forms: the new-experiment and launch forms, the algorithm catalog
turned into form fields, and form input turned into params or a grid."""

from __future__ import annotations

from django import forms

from apps.datasets.models import Dataset, DatasetVersion
from apps.ml.catalog import get_algorithm

from .models import TaskType


def param_fields(algorithm: str, values: dict | None = None) -> list[dict]:
    """One field per tunable hyperparameter, with scikit-learn's default as placeholder."""
    entry = get_algorithm(algorithm).describe()
    values = values or {}
    fields = []
    for p in entry["params"]:
        default = p["default"]
        fields.append(
            {
                "name": p["name"],
                "type": p["type"],
                "default": "none" if default is None else str(default).lower() if isinstance(default, bool) else default,
                "choices": p.get("choices") or (["true", "false"] if p["type"] == "bool" else None),
                "nullable": p.get("nullable", False),
                "value": values.get(p["name"], ""),
            }
        )
    return fields


def params_and_grid(algorithm: str, data) -> tuple[dict, dict | None]:
    """Read ``param_<name>`` inputs. Several comma-separated values make a search grid."""
    entry = get_algorithm(algorithm).describe()
    params: dict = {}
    multi = False
    for p in entry["params"]:
        raw = (data.get(f"param_{p['name']}") or "").strip()
        if raw == "":
            continue
        if "," in raw:
            params[p["name"]] = [v.strip() for v in raw.split(",") if v.strip()]
            multi = True
        else:
            params[p["name"]] = raw
    if not multi:
        return params, None
    return {}, {name: value if isinstance(value, list) else [value] for name, value in params.items()}


class ExperimentForm(forms.Form):
    """What the new-experiment page posts; ``experiment_create`` judges the target and metric."""

    name = forms.CharField(required=False, max_length=120)
    dataset = forms.ModelChoiceField(
        queryset=Dataset.objects.filter(latest_version__isnull=False),
        error_messages={"required": "Choose a dataset that has at least one version.",
                        "invalid_choice": "Choose a dataset that has at least one version."},
    )
    target = forms.CharField(required=False, max_length=200)
    task_type = forms.ChoiceField(required=False, choices=[("", "infer"), *TaskType.choices])
    primary_metric = forms.CharField(required=False, max_length=50)
    description = forms.CharField(required=False, max_length=5000)


class RunLaunchForm(forms.Form):
    """What the launch form posts besides the ``param_<name>`` inputs (see ``params_and_grid``)."""

    algorithm = forms.CharField(required=False, max_length=100)
    dataset_version = forms.ModelChoiceField(
        queryset=DatasetVersion.objects.none(), required=False,
        error_messages={"invalid_choice": "Choose a version of this experiment's dataset."},
    )
    random_state = forms.IntegerField(
        required=False, min_value=0, max_value=2**32 - 1,
        error_messages={"invalid": "The random seed must be a whole number."},
    )

    def __init__(self, *args, experiment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["dataset_version"].queryset = DatasetVersion.objects.filter(dataset_id=experiment.dataset_id)
