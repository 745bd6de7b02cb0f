"""Error pages: JSON under /api/, HTML elsewhere."""

from django.core.exceptions import TooManyFilesSent
from django.http import JsonResponse
from django.shortcuts import render

from apps.core.api_errors import error_body
from apps.core.pagination import CursorRefused
from apps.core.uploads import FileRefused


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if isinstance(exception, FileRefused):
        message, fields = str(exception), {"file": str(exception)}
    elif isinstance(exception, TooManyFilesSent):
        message, fields = "Send one file per upload.", {"file": "Send one file per upload."}
    elif isinstance(exception, CursorRefused):
        message, fields = str(exception), {exception.field: str(exception)}
    else:
        message, fields = "The request could not be read.", {}
    if _wants_json(request):
        return JsonResponse(error_body("bad_request", message, fields), status=400)
    return render(request, "errors/400.html", {"message": message}, status=400)


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse(error_body("not_found", f"Nothing at {request.path}"), status=404)
    return render(request, "errors/404.html", {"path": request.path}, status=404)


def permission_denied(request, exception=None):
    message = str(exception) if exception and str(exception) else "You do not have permission for this."
    if _wants_json(request):
        return JsonResponse(error_body("permission_denied", message), status=403)
    if request.headers.get("HX-Request"):
        return render(request, "errors/403_fragment.html", {"message": message}, status=403)
    return render(request, "errors/403.html", {"message": message}, status=403)


def server_error(request):
    if _wants_json(request):
        return JsonResponse(error_body("server_error", "Internal server error"), status=500)
    return render(request, "errors/500.html", status=500)
