import logging
import time

from django.contrib.auth.middleware import LoginRequiredMiddleware

logger = logging.getLogger("mlops.request")

# The API answers anonymous callers with a JSON 401/403 (DRF), health checks must be
# reachable by probes, and static files by everyone.
OPEN_PREFIXES = ("/api/", "/healthz", "/readyz", "/static/")


class SiteLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Every page needs a signed-in user, except the ones a probe or API client calls."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(OPEN_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if not request.path.startswith("/static/"):
            logger.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "user": getattr(getattr(request, "user", None), "username", None) or None,
                },
            )
        return response
