import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlops_web.settings")
application = get_wsgi_application()

# Every serving process loads this module once: the place to start its model warmer (see
# apps/deployments/runtime.py for why not AppConfig.ready or a gunicorn hook).
from apps.deployments import runtime  # noqa: E402

runtime.start_warmer()
