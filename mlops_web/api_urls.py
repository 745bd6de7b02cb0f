"""Every /api/v1/ endpoint, gathered from the apps' api modules."""

from django.urls import path

from apps.core.api import JobDetailApi
from apps.datasets import api as datasets_api

urlpatterns = [
    path("jobs/<int:pk>/", JobDetailApi.as_view(), name="job_detail"),
    path("datasets/", datasets_api.DatasetListApi.as_view(), name="dataset_list"),
    path("datasets/<int:pk>/", datasets_api.DatasetDetailApi.as_view(), name="dataset_detail"),
    path("datasets/<int:pk>/versions/", datasets_api.DatasetVersionUploadApi.as_view(), name="dataset_version_upload"),
    path("dataset-versions/<int:pk>/", datasets_api.DatasetVersionDetailApi.as_view(), name="dataset_version_detail"),
]
