from django.urls import path

from . import views

app_name = "maturity"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("models/<int:pk>/", views.model_maturity, name="model"),
    path("recompute/", views.recompute, name="recompute"),
    path("pipeline-changes/<int:pk>/", views.pipeline_change, name="pipeline_change"),
]
