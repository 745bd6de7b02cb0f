from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("", views.deployment_list, name="list"),
    path("deploy/", views.deploy, name="deploy"),
    path("<int:pk>/", views.deployment_detail, name="detail"),
    path("<int:pk>/rollback/", views.rollback, name="rollback"),
    path("<int:pk>/batches/", views.batch_upload, name="batch_upload"),
    path("batches/<int:pk>/", views.batch_detail, name="batch"),
    path("batches/<int:pk>/download/", views.batch_download, name="batch_download"),
]
