import os

from celery import Celery

from apps.core.broker import register as register_sqlite_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_web.settings")
register_sqlite_transport()

app = Celery("mlops_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
