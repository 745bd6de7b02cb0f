from django.urls import path

from . import views

app_name = "core"

urlpatterns = [
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/selfcheck/", views.selfcheck_start, name="selfcheck_start"),
    path("jobs/<int:pk>/", views.job_detail, name="job_detail"),
    path("jobs/<int:pk>/cancel/", views.job_cancel_view, name="job_cancel"),
    path("audit/", views.audit_list, name="audit_list"),
]
