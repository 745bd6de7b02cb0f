from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import Job
from .openapi import JobBody


class JobDetailApi(APIView):
    @extend_schema(responses={200: JobBody}, summary="A background job's status and progress")
    def get(self, request, pk: int):
        return Response(get_object_or_404(Job, pk=pk).as_dict())
