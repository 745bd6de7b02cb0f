from django.urls import path

from apps.core.views import not_built

app_name = "monitoring"

urlpatterns = [
    path("", not_built, {"title": "Monitoring", "issue": "7"}, name="overview"),
]
