"""JSON error bodies for every API failure: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.ml.errors import MLError


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object changed meanwhile; reload and try again."


def _flatten(detail, prefix: str = "") -> dict[str, str]:
    fields: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            fields[prefix or "non_field_errors"] = " ".join(str(v) for v in detail)
        else:
            for index, value in enumerate(detail):
                fields.update(_flatten(value, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        fields[prefix or "non_field_errors"] = str(detail)
    return fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc, context):
    if isinstance(exc, MLError):
        fields = {exc.field: exc.message} if exc.field else {}
        return Response(error_body(exc.code, exc.message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            fields = {k: " ".join(m for e in v for m in e.messages) for k, v in exc.error_dict.items()}
        else:
            fields = {}
        message = "; ".join(exc.messages)
        return Response(error_body("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(detail)
        first = next(iter(fields.items()), ("", "Invalid input"))
        message = f"{first[0]}: {first[1]}" if first[0] not in ("", "non_field_errors") else first[1]
        response.data = error_body("invalid", message, fields)
    else:
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


def json_not_found(request, exception=None):
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}"), status=404)
