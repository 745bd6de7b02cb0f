from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/settings/", views.policy_settings, name="settings"),
    path("<int:pk>/check/", views.check_now, name="check"),
    path("<int:pk>/retrain/", views.retrain_now, name="retrain"),
    path("reports/<int:pk>/", views.report_detail, name="report"),
    path("reports/<int:pk>/feature/<str:name>/", views.report_feature, name="report_feature"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert"),
    path("retrainings/<int:pk>/", views.retraining_detail, name="retraining"),
]
