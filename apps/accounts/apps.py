from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts: roles and API tokens"

    def ready(self):
        from . import receivers, schema  # noqa: F401 - connect the audit receiver, register the OpenAPI extension
