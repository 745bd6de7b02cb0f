"""What the maturity API answers (``api.py`` builds the JSON; these serializers describe it for OpenAPI)."""

from rest_framework import serializers

from apps.core.openapi import JobBody

from .models import PipelineStatus


class CriterionResult(serializers.Serializer):
    key = serializers.CharField()
    level = serializers.IntegerField(min_value=0, max_value=2)
    title = serializers.CharField()
    met = serializers.BooleanField()
    evidence = serializers.ListField(child=serializers.DictField(), help_text="Links ({label, url}) to the records.")
    detail = serializers.CharField(allow_blank=True)
    hint = serializers.CharField(allow_blank=True, help_text="What would meet it (blank when met).")
    hint_url = serializers.CharField(allow_blank=True)


class LevelOnDay(serializers.Serializer):
    date = serializers.DateField()
    level = serializers.IntegerField(min_value=0, max_value=2)


class ModelMaturityBody(serializers.Serializer):
    model = serializers.CharField()
    model_id = serializers.IntegerField()
    level = serializers.IntegerField(min_value=0, max_value=2)
    progress = serializers.FloatField(min_value=0, max_value=1, help_text="Share of the next level's criteria met.")
    criteria = CriterionResult(many=True)
    production_version = serializers.IntegerField(allow_null=True)
    health = serializers.ChoiceField(choices=["unknown", "ok", "warning", "drifting"])
    history = LevelOnDay(many=True, help_text="The level at the end of each day a snapshot was taken.")

    class Meta:
        ref_name = "ModelMaturity"


class PipelineStepBody(serializers.Serializer):
    key = serializers.CharField()
    status = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)
    job = JobBody(allow_null=True)


class PipelineChangeBody(serializers.Serializer):
    id = serializers.IntegerField()
    model = serializers.IntegerField()
    source_commit = serializers.CharField()
    spec = serializers.DictField()
    status = serializers.ChoiceField(choices=PipelineStatus.choices)
    reason = serializers.CharField(allow_blank=True)
    run = serializers.IntegerField(allow_null=True)
    model_version = serializers.IntegerField(allow_null=True)
    staging_promotion = serializers.IntegerField(allow_null=True)
    deployment = serializers.IntegerField(allow_null=True)
    smoke = serializers.DictField(allow_null=True, help_text="The smoke test's result (null before it ran).")
    production_promotion = serializers.IntegerField(allow_null=True)
    steps = PipelineStepBody(many=True)
    job = JobBody(allow_null=True, help_text="The training job of the change's run.")
    url = serializers.CharField()

    class Meta:
        ref_name = "PipelineChange"
