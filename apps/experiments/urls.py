from django.urls import path

from apps.core.views import not_built

app_name = "experiments"

urlpatterns = [
    path("", not_built, {"title": "Experiments", "issue": "4"}, name="list"),
]
