from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import LIST_PARAMETERS, api_page, with_next_link
from apps.core.schema import error
from apps.registry.models import ModelVersion

from . import openapi as docs
from .models import Deployment, Environment
from .selectors import traffic_24h
from .services import deployment_create, deployment_rollback, feedback_attach


def deployment_body(d: Deployment, stats: dict | None = None) -> dict:
    body = {
        "id": d.pk,
        "model": d.model.name,
        "model_version": d.model_version_id,
        "version": d.model_version.version,
        "environment": d.environment.name,
        "status": d.status,
        "is_rollback": d.is_rollback,
        "previous": d.previous_id,
        "deployed_by": d.deployed_by.get_username() if d.deployed_by else None,
        "deployed_at": d.deployed_at.isoformat(),
        "retired_at": d.retired_at.isoformat() if d.retired_at else None,
        "endpoint": f"/api/v1/predict/{d.model.name}/{d.environment.name}/",
        "url": d.get_absolute_url(),
    }
    if stats is not None:
        body["last_24h"] = stats
    return body


class DeployIn(serializers.Serializer):
    model_version = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.select_related("model"))
    environment = serializers.SlugRelatedField(slug_field="name", queryset=Environment.objects.all())
    note = serializers.CharField(required=False, allow_blank=True, default="")


class DeploymentListApi(APIView):
    @extend_schema(summary="Deployments, newest first (?status=active) with 24-hour traffic",
                   parameters=[*docs.LIST_PARAMETERS, *LIST_PARAMETERS],
                   responses={200: docs.DeploymentWithTraffic(many=True)})
    def get(self, request):
        items = Deployment.objects.select_related("model", "model_version", "environment", "deployed_by")
        if request.query_params.get("status"):
            items = items.filter(status=request.query_params["status"])
        rows, next_url = api_page(request, items)
        stats = traffic_24h([d.pk for d in rows])
        return with_next_link(Response([deployment_body(d, stats[d.pk]) for d in rows]), next_url)

    @extend_schema(request=DeployIn, summary="Deploy a version to an environment (replaces the active one)",
                   responses={201: docs.DeploymentBody,
                              409: error("That version is already active there, or a deployment raced this one")})
    def post(self, request):
        data = DeployIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        deployment = deployment_create(user=request.user, version=values["model_version"],
                                       environment=values["environment"], note=values.get("note", ""))
        return Response(deployment_body(deployment), status=status.HTTP_201_CREATED)


class DeploymentDetailApi(APIView):
    @extend_schema(summary="A deployment with its 24-hour traffic", responses={200: docs.DeploymentWithTraffic})
    def get(self, request, pk: int):
        d = get_object_or_404(Deployment.objects.select_related("model", "model_version", "environment"), pk=pk)
        return Response(deployment_body(d, traffic_24h([d.pk])[d.pk]))


class RollbackIn(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class DeploymentRollbackApi(APIView):
    @extend_schema(request=RollbackIn, summary="Re-activate the version this deployment replaced",
                   responses={201: docs.DeploymentBody,
                              409: error("Not the active deployment, or nothing before it to roll back to")})
    def post(self, request, pk: int):
        d = get_object_or_404(Deployment.objects.select_related("environment"), pk=pk)
        data = RollbackIn(data=request.data)
        data.is_valid(raise_exception=True)
        restored = deployment_rollback(user=request.user, deployment=d, reason=data.validated_data["reason"])
        return Response(deployment_body(restored), status=status.HTTP_201_CREATED)


class FeedbackApi(APIView):
    service_accounts_allowed = True
    required_capabilities = {"POST": "predict"}

    @extend_schema(summary="Attach ground truth by request id: {request_id, label} or {items: [...]}",
                   request=docs.FeedbackIn, responses={200: docs.FeedbackResult})
    def post(self, request):
        body = request.data
        items = body.get("items") if isinstance(body, dict) and "items" in body else [body]
        result = feedback_attach(user=request.user, items=items)
        return Response(result)
