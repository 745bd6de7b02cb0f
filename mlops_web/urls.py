from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from apps.accounts.urls import auth_urlpatterns
from apps.core import views as core_views
from apps.maturity import views as maturity_views

from .api_urls import urlpatterns as api_urlpatterns

handler400 = "mlops_web.errors.bad_request"
handler404 = "mlops_web.errors.not_found"
handler403 = "mlops_web.errors.permission_denied"
handler500 = "mlops_web.errors.server_error"

urlpatterns = [
    path("", maturity_views.overview, name="home"),
    path("favicon.ico", core_views.favicon, name="favicon"),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    *auth_urlpatterns,
    path("accounts/", include("apps.accounts.urls")),
    path("", include("apps.core.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("experiments/", include("apps.experiments.urls")),
    path("models/", include("apps.registry.urls")),
    path("deployments/", include("apps.deployments.urls")),
    path("monitoring/", include("apps.monitoring.urls")),
    path("maturity/", include("apps.maturity.urls")),
    path("admin/", admin.site.urls),
    path("mlflow/", include("apps.tracking.urls")),
    path("api/v1/", include((api_urlpatterns, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api_redoc"),
]

admin.site.site_header = "MLOps dashboard administration"
admin.site.site_title = "MLOps admin"
