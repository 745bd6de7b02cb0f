from django.urls import path

from . import views, views_mlflow

app_name = "experiments"

urlpatterns = [
    path("", views.experiment_list, name="list"),
    path("new/", views.experiment_new, name="new"),
    path("<int:pk>/", views.experiment_detail, name="detail"),
    path("<int:pk>/params/", views.param_form, name="param_form"),
    path("<int:pk>/runs/", views.run_create, name="run_create"),
    path("<int:pk>/compare/", views.run_compare, name="compare"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/again/", views.run_again_view, name="run_again"),
    path("runs/<int:pk>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("runs/<int:pk>/artifacts/<path:path>", views_mlflow.run_artifact_download, name="run_artifact"),
]
