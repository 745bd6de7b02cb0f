from django.apps import AppConfig


class MaturityConfig(AppConfig):
    name = "apps.maturity"
    label = "maturity"
