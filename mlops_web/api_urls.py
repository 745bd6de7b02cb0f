"""Every /api/v1/ endpoint, gathered from the apps' api modules."""

from django.urls import path

from apps.core.api import JobDetailApi

urlpatterns = [
    path("jobs/<int:pk>/", JobDetailApi.as_view(), name="job_detail"),
]
