"""Every /api/v1/ endpoint, gathered from the apps' api modules."""

from django.urls import path

from apps.core.api import JobDetailApi
from apps.datasets import api as datasets_api
from apps.experiments import api as experiments_api

urlpatterns = [
    path("jobs/<int:pk>/", JobDetailApi.as_view(), name="job_detail"),
    path("datasets/", datasets_api.DatasetListApi.as_view(), name="dataset_list"),
    path("datasets/<int:pk>/", datasets_api.DatasetDetailApi.as_view(), name="dataset_detail"),
    path("datasets/<int:pk>/versions/", datasets_api.DatasetVersionUploadApi.as_view(), name="dataset_version_upload"),
    path("dataset-versions/<int:pk>/", datasets_api.DatasetVersionDetailApi.as_view(), name="dataset_version_detail"),
    path("algorithms/", experiments_api.AlgorithmListApi.as_view(), name="algorithm_list"),
    path("experiments/", experiments_api.ExperimentListApi.as_view(), name="experiment_list"),
    path("experiments/<int:pk>/", experiments_api.ExperimentDetailApi.as_view(), name="experiment_detail"),
    path("experiments/<int:pk>/runs/", experiments_api.RunLaunchApi.as_view(), name="run_launch"),
    path("runs/<int:pk>/", experiments_api.RunDetailApi.as_view(), name="run_detail"),
    path("runs/<int:pk>/cancel/", experiments_api.RunCancelApi.as_view(), name="run_cancel"),
]
