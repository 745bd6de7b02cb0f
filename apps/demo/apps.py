from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo seeding (``manage.py seed_demo``): above every other app, imported by none."""

    name = "apps.demo"
    label = "demo"
