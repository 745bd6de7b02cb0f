"""Every /api/v1/ endpoint, gathered from the apps' api modules."""

from django.urls import path

from apps.core.api import JobDetailApi
from apps.datasets import api as datasets_api
from apps.deployments import api as deployments_api
from apps.deployments.predict import predict
from apps.experiments import api as experiments_api
from apps.maturity import api as maturity_api
from apps.monitoring import api as monitoring_api
from apps.registry import api as registry_api

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
    path("runs/<int:pk>/register/", registry_api.RunRegisterApi.as_view(), name="run_register"),
    path("models/", registry_api.ModelListApi.as_view(), name="model_list"),
    path("models/<int:pk>/", registry_api.ModelDetailApi.as_view(), name="model_detail"),
    path("models/<int:pk>/versions/", registry_api.ModelVersionListApi.as_view(), name="model_versions"),
    path("models/<int:pk>/history/", registry_api.ModelHistoryApi.as_view(), name="model_history"),
    path("models/<int:pk>/production-at/", registry_api.ProductionAtApi.as_view(), name="production_at"),
    path("model-versions/<int:pk>/", registry_api.ModelVersionDetailApi.as_view(), name="model_version_detail"),
    path("model-versions/<int:pk>/promotions/", registry_api.PromotionCreateApi.as_view(), name="promotion_create"),
    path("promotions/", registry_api.PromotionListApi.as_view(), name="promotion_list"),
    path("promotions/<int:pk>/", registry_api.PromotionDetailApi.as_view(), name="promotion_detail"),
    path("promotions/<int:pk>/approve/", registry_api.PromotionApproveApi.as_view(), name="promotion_approve"),
    path("promotions/<int:pk>/reject/", registry_api.PromotionRejectApi.as_view(), name="promotion_reject"),
    path("deployments/", deployments_api.DeploymentListApi.as_view(), name="deployment_list"),
    path("deployments/<int:pk>/", deployments_api.DeploymentDetailApi.as_view(), name="deployment_detail"),
    path("deployments/<int:pk>/rollback/", deployments_api.DeploymentRollbackApi.as_view(), name="deployment_rollback"),
    path("predict/<str:model>/<str:environment>/", predict, name="predict"),
    path("feedback/", deployments_api.FeedbackApi.as_view(), name="feedback"),
    path("deployments/<int:pk>/drift/", monitoring_api.DriftReportsApi.as_view(), name="drift_reports"),
    path("deployments/<int:pk>/drift-checks/", monitoring_api.DriftCheckApi.as_view(), name="drift_check"),
    path("maturity/", maturity_api.MaturityListApi.as_view(), name="maturity"),
    path("models/<int:pk>/pipeline-changes/", maturity_api.PipelineChangeApi.as_view(), name="pipeline_change"),
    path("pipeline-changes/<int:pk>/", maturity_api.PipelineChangeDetailApi.as_view(), name="pipeline_change_detail"),
]
