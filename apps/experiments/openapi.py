"""What the experiments API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from apps.core.models import JobStatus
from apps.core.openapi import JobBody
from apps.ml.catalog import TASK_TYPES

from .models import RunSource


class ExperimentBody(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    dataset = serializers.IntegerField(allow_null=True, help_text="Null for an experiment an MLflow client made.")
    target = serializers.CharField(allow_blank=True)
    task_type = serializers.CharField(allow_blank=True, help_text="classification or regression (blank from MLflow).")
    primary_metric = serializers.CharField(allow_blank=True)
    split_seed = serializers.IntegerField()
    holdout_fraction = serializers.FloatField()
    cv_folds = serializers.IntegerField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Experiment"


class RunSummary(serializers.Serializer):
    id = serializers.IntegerField()
    experiment = serializers.IntegerField()
    number = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    algorithm = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    metrics = serializers.DictField()
    dataset_version = serializers.IntegerField(allow_null=True)
    dataset_sha256 = serializers.CharField(allow_blank=True)
    source = serializers.ChoiceField(choices=RunSource.choices)
    rerun_of = serializers.IntegerField(allow_null=True)
    job = JobBody(allow_null=True, help_text="The training job (null for a grid-search trial or an MLflow run).")
    created_at = serializers.DateTimeField()
    url = serializers.CharField()

    class Meta:
        ref_name = "RunSummary"


class RunDetail(RunSummary):
    cv_scores = serializers.DictField()
    cv_mean = serializers.DictField()
    spec = serializers.DictField(help_text="The pipeline spec that was (or will be) trained.")
    random_state = serializers.IntegerField()
    n_train = serializers.IntegerField(allow_null=True)
    n_holdout = serializers.IntegerField(allow_null=True)
    classes = serializers.ListField(child=serializers.JSONField())
    signature = serializers.ListField(child=serializers.DictField())
    importances = serializers.ListField(child=serializers.JSONField())
    artifact_sha256 = serializers.CharField(allow_null=True)
    library_versions = serializers.DictField()
    app_version = serializers.CharField(allow_blank=True)
    trials = RunSummary(many=True, help_text="A grid search's trials (empty otherwise).")

    class Meta:
        ref_name = "Run"


class ExperimentDetail(ExperimentBody):
    runs = RunSummary(many=True)

    class Meta:
        ref_name = "ExperimentDetail"


class AlgorithmParam(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField(help_text="int, float, bool, choice, ...")
    default = serializers.JSONField(allow_null=True)
    nullable = serializers.BooleanField()
    choices = serializers.ListField(child=serializers.JSONField(), required=False, help_text="Only for `choice`.")


class AlgorithmBody(serializers.Serializer):
    key = serializers.CharField()
    task_type = serializers.ChoiceField(choices=list(TASK_TYPES))
    name = serializers.CharField()
    estimator = serializers.CharField(help_text="The scikit-learn estimator's import path.")
    params = AlgorithmParam(many=True)

    class Meta:
        ref_name = "Algorithm"


ALGORITHM_PARAMETERS = [OpenApiParameter("task_type", str, description="Only this task type's algorithms.")]
