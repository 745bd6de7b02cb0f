from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import (
    API_DEFAULT_LIMIT,
    LIST_PARAMETERS,
    api_list_response,
    api_page,
    keyset_page,
    with_next_link,
)
from apps.core.schema import error
from apps.experiments.models import Run

from . import openapi as docs
from .models import ModelVersion, PromotionRequest, PromotionStatus, RegisteredModel, Stage, StageTransition
from .services import (
    model_version_register,
    production_at,
    promotion_approve,
    promotion_reject,
    promotion_request,
)
from .views import parse_when


def version_body(v: ModelVersion) -> dict:
    return {
        "id": v.pk,
        "model": v.model_id,
        "model_name": v.model.name,
        "version": v.version,
        "stage": v.stage,
        "run": v.run_id,
        "artifact_sha256": v.artifact_sha256,
        "metrics": v.metrics,
        "signature": v.signature,
        "created_at": v.created_at.isoformat(),
        "url": v.get_absolute_url(),
    }


def model_body(m: RegisteredModel) -> dict:
    return {
        "id": m.pk,
        "name": m.name,
        "task_type": m.task_type,
        "primary_metric": m.primary_metric,
        "policy": {
            "threshold_metric": m.threshold_metric,
            "threshold_value": m.threshold_value,
            "max_regression": m.max_regression,
            "require_staging_first": m.require_staging_first,
            "allow_override": m.allow_override,
        },
        "updated_at": m.updated_at.isoformat(),
    }


def promotion_body(p: PromotionRequest) -> dict:
    return {
        "id": p.pk,
        "model_version": p.model_version_id,
        "target_stage": p.target_stage,
        "status": p.status,
        "reason": p.reason,
        "requested_by": p.requested_by.get_username() if p.requested_by else None,
        "on_behalf_of": p.on_behalf_of.get_username() if p.on_behalf_of else None,
        "champion": p.champion_id,
        "evaluation_dataset_version": p.evaluation_dataset_version_id,
        "evaluation_target": p.evaluation_target,
        "evaluation_target_how": p.evaluation_target_how,
        "gates": p.gates,
        "evidence": p.evidence,
        "job": p.job.as_dict() if p.job_id else None,
        "decided_by": p.decided_by.get_username() if p.decided_by else None,
        "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        "decision_comment": p.decision_comment,
        "override_reason": p.override_reason,
        "created_at": p.created_at.isoformat(),
        "url": p.get_absolute_url(),
    }


class RegisterIn(serializers.Serializer):
    model_name = serializers.CharField(max_length=100)
    description = serializers.CharField(required=False, allow_blank=True, default="")


class PromotionIn(serializers.Serializer):
    target_stage = serializers.CharField()
    reason = serializers.CharField()
    evaluation_dataset_version = serializers.IntegerField(
        required=False, allow_null=True, min_value=1,
        help_text="Versions trained elsewhere: the dataset version (id) their gates score them on; proposed from "
                  "the run's logged inputs when left out.")
    evaluation_target = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=200,
        help_text="Its target column; inferred when left out (see the promotion's evaluation_target_how).")


class DecisionIn(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    override_reason = serializers.CharField(required=False, allow_blank=True, default="")


class RunRegisterApi(APIView):
    required_capabilities = {"POST": "register_model"}

    @extend_schema(request=RegisterIn, summary="Register a finished run as a new version of a model",
                   responses={201: docs.ModelVersionBody, 409: error("The run is already registered")})
    def post(self, request, pk: int):
        run = get_object_or_404(Run.objects.select_related("experiment", "job"), pk=pk)
        data = RegisterIn(data=request.data)
        data.is_valid(raise_exception=True)
        version = model_version_register(user=request.user, run=run, **data.validated_data)
        return Response(version_body(version), status=status.HTTP_201_CREATED)


def _live_versions(models: list[RegisteredModel]) -> dict[int, list[dict]]:
    """Each model's staging and production versions, in one query for the page's models."""
    live: dict[int, list[dict]] = {m.pk: [] for m in models}
    for v in (ModelVersion.objects.filter(model__in=list(live), stage__in=[Stage.STAGING, Stage.PRODUCTION])
              .order_by("-version").only("id", "model_id", "version", "stage")):
        live[v.model_id].append({"id": v.pk, "version": v.version, "stage": v.stage})
    return live


class ModelListApi(APIView):
    @extend_schema(summary="Registered models, newest first, with their live (staging and production) versions",
                   parameters=LIST_PARAMETERS, responses={200: docs.ModelListItem(many=True)})
    def get(self, request):
        rows, next_url = api_page(request, RegisteredModel.objects.all())
        live = _live_versions(rows)
        response = Response([model_body(m) | {"versions": live[m.pk], "versions_url": _versions_url(request, m)}
                             for m in rows])
        return with_next_link(response, next_url)


def _versions_url(request, model: RegisteredModel) -> str:
    return request.build_absolute_uri(reverse("api:model_versions", args=[model.pk]))


def _versions_of(model: RegisteredModel):
    return model.versions.select_related("model")


def _history_of(model: RegisteredModel):
    return StageTransition.objects.filter(model_version__model=model).select_related("model_version", "actor")


def transition_body(t: StageTransition) -> dict:
    return {"id": t.pk, "version": t.model_version.version, "from": t.from_stage, "to": t.to_stage,
            "actor": t.actor.get_username() if t.actor else None, "reason": t.reason,
            "promotion": t.promotion_id, "at": t.created_at.isoformat()}


class ModelDetailApi(APIView):
    @extend_schema(summary="A model, its newest versions and stage changes (the rest page by page: "
                           "versions_next, history_next)", responses={200: docs.ModelDetail})
    def get(self, request, pk: int):
        model = get_object_or_404(RegisteredModel, pk=pk)
        versions = keyset_page(_versions_of(model), size=API_DEFAULT_LIMIT)
        history = keyset_page(_history_of(model), size=API_DEFAULT_LIMIT)

        def next_of(name: str, page) -> str | None:
            url = request.build_absolute_uri(reverse(name, args=[model.pk]))
            return None if page.older is None else f"{url}?before={page.older}"

        return Response(model_body(model) | {
            "versions": [version_body(v) for v in versions.rows],
            "versions_next": next_of("api:model_versions", versions),
            "history": [transition_body(t) for t in history.rows],
            "history_next": next_of("api:model_history", history),
        })


class ModelVersionListApi(APIView):
    @extend_schema(summary="A model's versions, newest first", parameters=LIST_PARAMETERS,
                   responses={200: docs.ModelVersionBody(many=True)})
    def get(self, request, pk: int):
        model = get_object_or_404(RegisteredModel, pk=pk)
        return api_list_response(request, _versions_of(model), version_body)


class ModelHistoryApi(APIView):
    @extend_schema(summary="A model's stage changes, newest first", parameters=LIST_PARAMETERS,
                   responses={200: docs.StageTransitionBody})
    def get(self, request, pk: int):
        model = get_object_or_404(RegisteredModel, pk=pk)
        return api_list_response(request, _history_of(model), transition_body)


class ProductionAtApi(APIView):
    @extend_schema(
        summary="Which version was in production at a moment",
        parameters=[OpenApiParameter("at", str, description="ISO date or date-time", required=True)],
        responses={200: docs.ProductionAtBody, 400: error("`at` is not a date")},
    )
    def get(self, request, pk: int):
        model = get_object_or_404(RegisteredModel, pk=pk)
        raw = request.query_params.get("at", "")
        when = parse_when(raw)
        if when is None:
            raise DrfValidationError({"at": f"Not a date: {raw!r}; use YYYY-MM-DD or an ISO date-time."})
        version = production_at(model, when)
        return Response({"model": model.pk, "at": when.isoformat(),
                         "version": version_body(version) if version else None})


class ModelVersionDetailApi(APIView):
    @extend_schema(summary="A model version with lineage, metrics and promotions",
                   responses={200: docs.ModelVersionDetail})
    def get(self, request, pk: int):
        v = get_object_or_404(ModelVersion.objects.select_related("model", "run"), pk=pk)
        return Response(version_body(v) | {
            "dataset_version": v.run.dataset_version_id,
            "dataset_sha256": v.run.dataset_sha256,
            "promotions": [promotion_body(p) for p in v.promotions.select_related("requested_by", "on_behalf_of", "decided_by", "job")],
        })


class PromotionCreateApi(APIView):
    required_capabilities = {"POST": "request_promotion"}

    @extend_schema(request=PromotionIn, summary="Request a promotion; the gates run as a job",
                   responses={201: docs.PromotionBody, 409: error("A request for that stage is already pending")})
    def post(self, request, pk: int):
        version = get_object_or_404(ModelVersion.objects.select_related("model"), pk=pk)
        data = PromotionIn(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = promotion_request(user=request.user, version=version, **data.validated_data)
        return Response(promotion_body(promotion), status=status.HTTP_201_CREATED)


class PromotionListApi(APIView):
    @extend_schema(summary="Promotion requests, newest first (?status=pending|approved|rejected)",
                   parameters=[*docs.PROMOTION_LIST_PARAMETERS, *LIST_PARAMETERS],
                   responses={200: docs.PromotionBody(many=True)})
    def get(self, request):
        items = PromotionRequest.objects.select_related("requested_by", "on_behalf_of", "decided_by", "job")
        wanted = request.query_params.get("status")
        if wanted in PromotionStatus.values:
            items = items.filter(status=wanted)
        return api_list_response(request, items, promotion_body)


class PromotionDetailApi(APIView):
    @extend_schema(summary="A promotion request with its gates and evidence", responses={200: docs.PromotionBody})
    def get(self, request, pk: int):
        p = get_object_or_404(PromotionRequest.objects.select_related("requested_by", "on_behalf_of", "decided_by", "job"), pk=pk)
        return Response(promotion_body(p))


class PromotionApproveApi(APIView):
    required_capabilities = {"POST": "decide_promotion"}

    @extend_schema(request=DecisionIn, summary="Approve (four-eyes; an override reason when gates failed)",
                   responses={200: docs.PromotionBody, 409: error("Already decided, gates not ready, or gates failed")})
    def post(self, request, pk: int):
        promotion = get_object_or_404(PromotionRequest, pk=pk)
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = promotion_approve(user=request.user, promotion=promotion, **data.validated_data)
        return Response(promotion_body(promotion))


class PromotionRejectApi(APIView):
    required_capabilities = {"POST": "decide_promotion"}

    @extend_schema(request=DecisionIn, summary="Reject with a comment",
                   responses={200: docs.PromotionBody, 409: error("Already decided")})
    def post(self, request, pk: int):
        promotion = get_object_or_404(PromotionRequest, pk=pk)
        data = DecisionIn(data=request.data)
        data.is_valid(raise_exception=True)
        promotion = promotion_reject(user=request.user, promotion=promotion, comment=data.validated_data["comment"])
        return Response(promotion_body(promotion))
