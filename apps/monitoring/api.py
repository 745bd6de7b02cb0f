from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pagination import LIST_PARAMETERS, api_list_response
from apps.deployments.models import Deployment

from . import openapi as docs
from .models import DriftReport
from .services import check_request, policy_ensure


def report_body(r: DriftReport) -> dict:
    return {
        "id": r.pk,
        "deployment": r.deployment_id,
        "model_version": r.model_version_id,
        "reference_dataset_version": r.reference_dataset_version_id,
        "window_start": r.window_start.isoformat(),
        "window_end": r.window_end.isoformat(),
        "rows": r.rows,
        "status": r.status,
        "dataset_drift": r.dataset_drift,
        "drift_share": r.drift_share,
        "drifted_features": r.drifted_features,
        "features": [
            {k: f.get(k) for k in ("name", "kind", "method", "statistic", "p_value", "threshold", "drifted",
                                   "status", "rows", "approximate")}
            for f in r.features
        ],
        "prediction_drift": {k: r.prediction_drift.get(k) for k in ("method", "statistic", "p_value", "drifted",
                                                                     "status")} if r.prediction_drift else None,
        "performance": r.performance,
        "url": r.get_absolute_url(),
    }


class DriftReportsApi(APIView):
    @extend_schema(summary="Drift reports of the model in this deployment's environment, newest first",
                   parameters=LIST_PARAMETERS, responses={200: docs.DriftReportBody(many=True)})
    def get(self, request, pk: int):
        deployment = get_object_or_404(Deployment, pk=pk)
        policy = policy_ensure(model=deployment.model, environment=deployment.environment)
        return api_list_response(request, policy.reports.all(), report_body)


class CheckIn(serializers.Serializer):
    window_start = serializers.DateTimeField(required=False)
    window_end = serializers.DateTimeField(required=False)


class DriftCheckApi(APIView):

    @extend_schema(request=CheckIn, summary="Run a drift check now (optional window) -> 202 with the job",
                   responses={202: docs.DriftCheckStarted})
    def post(self, request, pk: int):
        deployment = get_object_or_404(Deployment.objects.select_related("model", "environment"), pk=pk)
        data = CheckIn(data=request.data)
        data.is_valid(raise_exception=True)
        policy = policy_ensure(model=deployment.model, environment=deployment.environment)
        job = check_request(user=request.user, policy=policy, **data.validated_data)
        return Response({"job": job.as_dict(), "policy": policy.pk}, status=status.HTTP_202_ACCEPTED)
