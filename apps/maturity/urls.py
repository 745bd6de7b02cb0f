from django.urls import path

from apps.core.views import not_built

app_name = "maturity"

urlpatterns = [
    path("", not_built, {"title": "Maturity", "issue": "8"}, name="overview"),
]
