from django.apps import AppConfig


class MaturityConfig(AppConfig):
    name = "apps.maturity"
    label = "maturity"

    def ready(self):
        from . import receivers  # noqa: F401 - connects the signal receivers
