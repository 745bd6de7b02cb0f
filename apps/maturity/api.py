from __future__ import annotations

from collections import OrderedDict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import LIST_PARAMETERS, api_page, with_next_link
from apps.registry.models import RegisteredModel

from . import openapi as docs
from .criteria import evaluate_all
from .models import MaturitySnapshot, PipelineChange
from .services import pipeline_change_create


def change_body(change: PipelineChange) -> dict:
    return {
        "id": change.pk, "model": change.model_id, "source_commit": change.source_commit, "spec": change.spec,
        "status": change.status, "reason": change.reason, "run": change.run_id,
        "model_version": change.model_version_id, "staging_promotion": change.staging_promotion_id,
        "deployment": change.deployment_id, "smoke": change.smoke or None,
        "production_promotion": change.production_promotion_id,
        "steps": [{"key": s.key, "status": s.status, "detail": s.detail,
                   "job": s.job.as_dict() if s.job_id else None} for s in change.steps.select_related("job")],
        "job": change.run.job.as_dict() if change.run_id and change.run.job_id else None,
        "url": change.get_absolute_url(),
    }


class MaturityListApi(APIView):
    @extend_schema(summary="Each model's maturity level, criteria with evidence, and its history (one point a day); "
                           "models newest first, a page at a time", parameters=LIST_PARAMETERS,
                   responses={200: docs.ModelMaturityBody(many=True)})
    def get(self, request):
        models, next_url = api_page(request, RegisteredModel.objects.only("id"))
        ids = [m.pk for m in models]
        history: dict[int, OrderedDict] = {}
        for model_id, taken_at, level in (MaturitySnapshot.objects.filter(model_id__in=ids).order_by("taken_at", "id")
                                          .values_list("model_id", "taken_at", "level")):
            history.setdefault(model_id, OrderedDict())[taken_at.date().isoformat()] = level  # a day's last level
        return with_next_link(Response([
            {**r.as_dict(),
             "production_version": r.production_version.version if r.production_version else None,
             "health": r.health,
             "history": [{"date": d, "level": lvl} for d, lvl in history.get(r.model.pk, {}).items()]}
            for r in evaluate_all(model_ids=ids)
        ]), next_url)


class SpecIn(serializers.Serializer):
    algorithm = serializers.CharField()
    params = serializers.DictField(required=False)
    dataset_version = serializers.IntegerField(required=False, allow_null=True)
    random_state = serializers.IntegerField(required=False, min_value=0)


class PipelineChangeIn(serializers.Serializer):
    source_commit = serializers.CharField(max_length=100)
    spec = SpecIn(required=False, help_text="A model trained here: what to train.")
    model_version = serializers.IntegerField(
        required=False, min_value=1, help_text="A model trained elsewhere: the version number CI logged with the "
                                               "MLflow client at source_commit (instead of a spec).")
    evaluation_dataset_version = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    evaluation_target = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class PipelineChangeApi(APIView):
    required_capabilities = {"POST": "launch_training"}

    @extend_schema(request=PipelineChangeIn, summary="CI: a pipeline change (commit + spec) -> trained, gated, "
                   "staged, smoke-tested, production request opened (202 with the change and its first job)",
                   responses={202: docs.PipelineChangeBody})
    def post(self, request, pk: int):
        model = get_object_or_404(RegisteredModel, pk=pk)
        data = PipelineChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        change = pipeline_change_create(user=request.user, model=model, source_commit=fields.pop("source_commit"),
                                        spec=dict(fields.pop("spec", None) or {}), **fields)
        return Response(change_body(change), status=status.HTTP_202_ACCEPTED)


class PipelineChangeDetailApi(APIView):
    @extend_schema(summary="A pipeline change with its steps and jobs", responses={200: docs.PipelineChangeBody})
    def get(self, request, pk: int):
        change = get_object_or_404(PipelineChange.objects.select_related("run__job"), pk=pk)
        return Response(change_body(change))
