from django.urls import path

from . import views

app_name = "datasets"

urlpatterns = [
    path("", views.dataset_list, name="list"),
    path("new/", views.dataset_new, name="new"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/upload/", views.dataset_upload, name="upload"),
    path("<int:pk>/compare/", views.version_compare, name="compare"),
    path("versions/<int:pk>/", views.version_detail, name="version"),
    path("versions/<int:pk>/role/", views.version_set_role, name="version_role"),
    path("versions/<int:pk>/override/", views.version_override, name="version_override"),
    path("versions/<int:pk>/download/", views.version_download, name="version_download"),
]
