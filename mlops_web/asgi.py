import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_web.settings")
application = get_asgi_application()

# As in wsgi.py: each serving process starts its model warmer once.
from apps.deployments import runtime  # noqa: E402

runtime.start_warmer()
