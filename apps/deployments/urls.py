from django.urls import path

from apps.core.views import not_built

app_name = "deployments"

urlpatterns = [
    path("", not_built, {"title": "Deployments", "issue": "6"}, name="list"),
]
