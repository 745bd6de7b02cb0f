import logging
import time

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import JsonResponse
from django.shortcuts import render

from .api_errors import error_body

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


NUL_REFUSED = "Null characters are not allowed."


def _nul_carrier(request) -> str | None:
    """The name of the first part of the URL that holds a NUL character: the path or a query parameter."""
    if "\x00" in request.path:
        return "path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "\\x00")
    return None


class NulCharacterRefusalMiddleware:
    """PostgreSQL text can neither hold nor be compared with a NUL character, so a URL carrying one
    (a search term, a status filter, a name in the path) would only reach a view to end in a database
    error: it is a 400 naming where the NUL was, before any view queries with it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        carrier = _nul_carrier(request)
        if carrier is None:
            return self.get_response(request)
        message = f"{carrier}: {NUL_REFUSED}"
        if request.path.startswith(settings.MLFLOW_PREFIX):  # the MLflow client reads only its own error shape
            return JsonResponse({"error_code": "INVALID_PARAMETER_VALUE", "message": message}, status=400)
        if request.path.startswith("/api/"):
            return JsonResponse(error_body("invalid", message, {carrier: NUL_REFUSED}), status=400)
        return render(request, "errors/400.html", {"message": message}, status=400)


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
