"""What the deployments API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from .models import DeploymentStatus


class Traffic(serializers.Serializer):
    requests = serializers.IntegerField()
    instances = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True, help_text="Null without traffic.")
    p50 = serializers.FloatField(allow_null=True, help_text="Median latency in ms.")
    p95 = serializers.FloatField(allow_null=True)


class DeploymentBody(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.CharField(help_text="The registered model's name.")
    model_version = serializers.IntegerField()
    version = serializers.IntegerField()
    environment = serializers.CharField()
    status = serializers.ChoiceField(choices=DeploymentStatus.choices)
    is_rollback = serializers.BooleanField()
    previous = serializers.IntegerField(allow_null=True, help_text="The deployment this one replaced.")
    deployed_by = serializers.CharField(allow_null=True)
    deployed_at = serializers.DateTimeField()
    retired_at = serializers.DateTimeField(allow_null=True)
    endpoint = serializers.CharField(help_text="Where to POST predictions.")
    url = serializers.CharField()

    class Meta:
        ref_name = "Deployment"


class DeploymentWithTraffic(DeploymentBody):
    last_24h = Traffic()

    class Meta:
        ref_name = "DeploymentWithTraffic"


class FeedbackItem(serializers.Serializer):
    request_id = serializers.UUIDField()
    label = serializers.JSONField(help_text="The true label (a number for a regression model).")


class FeedbackIn(serializers.Serializer):
    """One label (`request_id` and `label`) or many (`items`)."""

    request_id = serializers.UUIDField(required=False)
    label = serializers.JSONField(required=False)
    items = FeedbackItem(many=True, required=False, help_text="At most 10,000.")


class FeedbackResult(serializers.Serializer):
    updated = serializers.IntegerField(help_text="How many logged predictions got their label.")


LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=DeploymentStatus.values, description="Only deployments in this status."),
]
