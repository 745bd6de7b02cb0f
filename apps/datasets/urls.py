from django.urls import path

from apps.core.views import not_built

app_name = "datasets"

urlpatterns = [
    path("", not_built, {"title": "Datasets", "issue": "3"}, name="list"),
]
