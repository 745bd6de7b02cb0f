from django.urls import path

from . import views

app_name = "registry"

urlpatterns = [
    path("", views.model_list, name="list"),
    path("<int:pk>/", views.model_detail, name="model"),
    path("versions/<int:pk>/", views.version_detail, name="version"),
    path("versions/<int:pk>/stage/", views.stage_badge, name="stage_badge"),
    path("versions/<int:pk>/promote/", views.request_promotion, name="request_promotion"),
    path("register/<int:run_pk>/", views.register, name="register"),
    path("promotions/", views.queue, name="queue"),
    path("promotions/<int:pk>/", views.promotion_detail, name="promotion"),
    path("promotions/<int:pk>/approve/", views.approve, name="approve"),
    path("promotions/<int:pk>/reject/", views.reject, name="reject"),
]
