"""What the monitoring API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from rest_framework import serializers

from apps.core.openapi import JobBody

from .models import ReportStatus


class FeatureDrift(serializers.Serializer):
    """One feature's test; a member a report does not record is null."""

    name = serializers.CharField(allow_null=True)
    kind = serializers.CharField(allow_null=True, help_text="numeric or categorical.")
    method = serializers.CharField(allow_null=True, help_text="psi, ks, wasserstein, jensenshannon, chisquare, ...")
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    rows = serializers.IntegerField(allow_null=True)
    approximate = serializers.BooleanField(allow_null=True, help_text="Compared with a summary, not the data.")


class PredictionDrift(serializers.Serializer):
    method = serializers.CharField(allow_null=True)
    statistic = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    drifted = serializers.BooleanField(allow_null=True)
    status = serializers.CharField(allow_null=True)


class DriftReportBody(serializers.Serializer):
    id = serializers.IntegerField()
    deployment = serializers.IntegerField(allow_null=True)
    model_version = serializers.IntegerField(allow_null=True)
    reference_dataset_version = serializers.IntegerField(allow_null=True)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    rows = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    dataset_drift = serializers.BooleanField(allow_null=True, help_text="Null when there was not enough data.")
    drift_share = serializers.FloatField(allow_null=True)
    drifted_features = serializers.ListField(child=serializers.CharField())
    features = FeatureDrift(many=True)
    prediction_drift = PredictionDrift(allow_null=True)
    performance = serializers.DictField(help_text="Metrics on the labelled rows of the window (empty without labels).")
    url = serializers.CharField()

    class Meta:
        ref_name = "DriftReport"


class DriftCheckStarted(serializers.Serializer):
    job = JobBody()
    policy = serializers.IntegerField(help_text="The monitor policy the check runs under.")
