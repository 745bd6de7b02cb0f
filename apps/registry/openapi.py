"""What the registry API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

from apps.core.openapi import JobBody

from .models import PROMOTION_TARGETS, PromotionStatus, Stage


class ModelVersionBody(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.IntegerField()
    model_name = serializers.CharField()
    version = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)
    run = serializers.IntegerField()
    artifact_sha256 = serializers.CharField(allow_blank=True)
    metrics = serializers.DictField()
    signature = serializers.ListField(child=serializers.DictField())
    created_at = serializers.DateTimeField()
    url = serializers.CharField()

    class Meta:
        ref_name = "ModelVersion"


class GatePolicy(serializers.Serializer):
    threshold_metric = serializers.CharField()
    threshold_value = serializers.FloatField()
    max_regression = serializers.FloatField()
    require_staging_first = serializers.BooleanField()
    allow_override = serializers.BooleanField()


class ModelBody(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    task_type = serializers.CharField()
    primary_metric = serializers.CharField()
    policy = GatePolicy()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "RegisteredModel"


class VersionStage(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=Stage.choices)


class ModelListItem(ModelBody):
    versions = VersionStage(many=True)

    class Meta:
        ref_name = "RegisteredModelListItem"


StageTransitionBody = inline_serializer("StageTransition", {
    "version": serializers.IntegerField(),
    "from": serializers.ChoiceField(choices=Stage.choices),
    "to": serializers.ChoiceField(choices=Stage.choices),
    "actor": serializers.CharField(allow_null=True),
    "reason": serializers.CharField(allow_blank=True),
    "promotion": serializers.IntegerField(allow_null=True),
    "at": serializers.DateTimeField(),
}, many=True)


class ModelDetail(ModelBody):
    versions = ModelVersionBody(many=True)
    history = StageTransitionBody

    class Meta:
        ref_name = "RegisteredModelDetail"


class ProductionAtBody(serializers.Serializer):
    model = serializers.IntegerField()
    at = serializers.DateTimeField()
    version = ModelVersionBody(allow_null=True, help_text="Null when no version was in production then.")


class GateResult(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    passed = serializers.BooleanField()
    detail = serializers.CharField(allow_blank=True)


class PromotionBody(serializers.Serializer):
    id = serializers.IntegerField()
    model_version = serializers.IntegerField()
    target_stage = serializers.ChoiceField(choices=[(s.value, s.label) for s in PROMOTION_TARGETS])
    status = serializers.ChoiceField(choices=PromotionStatus.choices)
    reason = serializers.CharField(allow_blank=True)
    requested_by = serializers.CharField(allow_null=True)
    on_behalf_of = serializers.CharField(allow_null=True, help_text="Whose action started an automated request.")
    champion = serializers.IntegerField(allow_null=True, help_text="The version in the target stage now.")
    gates = GateResult(many=True, help_text="Empty until the gates job has run.")
    evidence = serializers.DictField()
    job = JobBody(allow_null=True, help_text="The gates job.")
    decided_by = serializers.CharField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decision_comment = serializers.CharField(allow_blank=True)
    override_reason = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    url = serializers.CharField()

    class Meta:
        ref_name = "PromotionRequest"


class ModelVersionDetail(ModelVersionBody):
    dataset_version = serializers.IntegerField(allow_null=True)
    dataset_sha256 = serializers.CharField(allow_blank=True)
    promotions = PromotionBody(many=True)

    class Meta:
        ref_name = "ModelVersionDetail"


PROMOTION_LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=PromotionStatus.values, description="Only requests in this status."),
]
