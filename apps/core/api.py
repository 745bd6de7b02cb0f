from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Job

JobSchema = inline_serializer(
    "Job",
    {
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed", "cancelled"]),
        "progress": serializers.IntegerField(),
        "message": serializers.CharField(),
        "error": serializers.CharField(),
    },
)


class JobDetailApi(APIView):
    @extend_schema(responses=JobSchema, summary="A background job's status and progress")
    def get(self, request, pk: int):
        return Response(get_object_or_404(Job, pk=pk).as_dict())
