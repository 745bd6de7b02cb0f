from django.urls import path

from apps.core.views import not_built

app_name = "registry"

urlpatterns = [
    path("", not_built, {"title": "Models", "issue": "5"}, name="list"),
]
