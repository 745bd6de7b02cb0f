"""The MLflow REST protocol's plumbing: typed request messages, MLflow's error JSON, one dispatcher.

Every answer under the prefix is JSON; every client mistake is a 4xx with
``{"error_code", "message"}`` (the client retries 5xx for minutes, so a 5xx means a bug of ours).
Request fields are checked against the protocol's types before any service runs: a number where
a string belongs is ``INVALID_PARAMETER_VALUE`` naming the field, as MLflow's server answers.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Callable
from typing import Any

import orjson
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, RequestDataTooBig, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from apps.core.api_errors import Conflict
from apps.experiments.mlflow_runs import AlreadyExists
from apps.ml.errors import MLError

from .auth import authenticate, require_access
from .errors import STATUS, MlflowError

logger = logging.getLogger("mlops.tracking")

MAX_DEPTH = 5
MAX_LIST = 10_000


def json_response(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def error_response(code: str, message: str, status: int | None = None) -> HttpResponse:
    return json_response({"error_code": code, "message": message}, status or STATUS.get(code, 400))


def invalid(message: str) -> MlflowError:
    return MlflowError("INVALID_PARAMETER_VALUE", message)


# --- typed messages -------------------------------------------------------------------------------------
# A schema maps field names to a type: "string", "int64", "int32", "double", "bool", a tuple of enum
# names, a nested schema (dict), or a one-item list of any of those for a repeated field.


def _scalar(value: Any, kind: Any, name: str) -> Any:
    if isinstance(kind, tuple):
        if not isinstance(value, str) or value not in kind:
            raise invalid(f"Invalid value {str(value)[:60]!r} for parameter '{name}': expected one of "
                          f"{', '.join(kind)}.")
        return value
    if kind == "string":
        if not isinstance(value, str):
            raise invalid(f"Invalid value {str(value)[:60]} for parameter '{name}' supplied: it must be a string.")
        if "\x00" in value:
            raise invalid(f"Parameter '{name}' contains a NUL character.")
        return value
    if kind in ("int64", "int32"):
        bound = 2**63 if kind == "int64" else 2**31
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not -bound <= value < bound:
            raise invalid(f"Invalid value {str(value)[:60]} for parameter '{name}' supplied: it must be an integer.")
        return value
    if kind == "double":
        if isinstance(value, str):
            special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
            if value in special:
                return special[value]
            try:
                value = float(value)
            except ValueError:
                raise invalid(f"Invalid value {value[:60]!r} for parameter '{name}': it must be a number.") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(f"Invalid value {str(value)[:60]} for parameter '{name}' supplied: it must be a number.")
        return float(value)
    if kind == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid(f"Invalid value {str(value)[:60]} for parameter '{name}': it must be true or false.")
        return value
    raise AssertionError(kind)


def parse_message(data: Any, schema: dict, *, prefix: str = "", depth: int = 0) -> dict:
    """Check a JSON object against ``schema``; unknown fields are ignored, as MLflow's server does."""
    if depth > MAX_DEPTH:
        raise invalid(f"The request nests deeper than {MAX_DEPTH} levels.")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise invalid(f"Invalid value for '{prefix or 'request'}': expected a JSON object.")
    out: dict = {}
    for name, kind in schema.items():
        value = data.get(name)
        if value is None:
            continue
        field = f"{prefix}{name}"
        if isinstance(kind, list):
            if not isinstance(value, list):
                raise invalid(f"Invalid value for parameter '{field}': expected a list.")
            if len(value) > MAX_LIST:
                raise invalid(f"Parameter '{field}' lists more than {MAX_LIST} items.")
            out[name] = [_one(item, kind[0], f"{field}[{i}]", depth) for i, item in enumerate(value)]
        else:
            out[name] = _one(value, kind, field, depth)
    return out


def _one(value: Any, kind: Any, field: str, depth: int) -> Any:
    if isinstance(kind, dict):
        return parse_message(value, kind, prefix=f"{field}.", depth=depth + 1)
    return _scalar(value, kind, field)


def parse_query(query, schema: dict) -> dict:
    """A GET request's message from its query string (lists repeat their key)."""
    out: dict = {}
    for name, kind in schema.items():
        if isinstance(kind, list):
            values = query.getlist(name)
            if values:
                out[name] = [_scalar(v, kind[0], name) for v in values[:MAX_LIST]]
        elif name in query:
            out[name] = _scalar(query.get(name), kind, name)
    return out


def request_message(request, schema: dict) -> dict:
    if not schema:  # artifact uploads: the body is the file, streamed by the handler
        return {}
    if request.method == "GET":
        return parse_query(request.GET, schema)
    raw = request.body
    if not raw.strip():
        return parse_message({}, schema)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MlflowError("MALFORMED_REQUEST", "The request body is not valid JSON.", 400) from None
    return parse_message(data, schema)


# --- dispatch -----------------------------------------------------------------------------------------------


def _error_for(exc: Exception) -> HttpResponse:
    if isinstance(exc, MlflowError):
        return error_response(exc.code, exc.message, exc.status)
    if isinstance(exc, AlreadyExists):
        return error_response("RESOURCE_ALREADY_EXISTS", str(exc.detail))
    if isinstance(exc, Conflict):
        return error_response("RESOURCE_CONFLICT", str(exc.detail))
    if isinstance(exc, ObjectDoesNotExist):
        return error_response("RESOURCE_DOES_NOT_EXIST", str(exc) or "Not found.")
    if isinstance(exc, PermissionDenied):
        return error_response("PERMISSION_DENIED", str(exc) or "Permission denied.")
    if isinstance(exc, ValidationError):
        return error_response("INVALID_PARAMETER_VALUE", " ".join(exc.messages)[:2000])
    if isinstance(exc, MLError):
        return error_response("INVALID_PARAMETER_VALUE", exc.message)
    if isinstance(exc, RequestDataTooBig):
        return error_response("INVALID_PARAMETER_VALUE", "The request body is too large.", 413)
    raise exc


def endpoint(**handlers: tuple[str, Callable]) -> Callable:
    """One URL's view: ``GET=("read", handler)``, ``POST=("log", handler)``...; handlers return a dict."""

    @csrf_exempt
    @login_not_required
    def view(request, **kwargs):
        entry = handlers.get(request.method)
        if entry is None:
            allowed = ", ".join(sorted(handlers))
            response = error_response("BAD_REQUEST", f"{request.method} is not allowed here; use {allowed}.", 405)
            response["Allow"] = allowed
            return response
        access, handler = entry
        try:
            if any("\x00" in str(v) for v in kwargs.values()):
                raise invalid("The path contains a NUL character.")
            user = authenticate(request)
            require_access(user, access)
            result = handler(request, user, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every expected error becomes MLflow's JSON; others re-raise
            try:
                return _error_for(exc)
            except Exception:
                logger.exception("tracking route failed", extra={"path": request.path})
                return error_response("INTERNAL_ERROR", "The server failed; the error was logged.", 500)
        if isinstance(result, HttpResponseBase):
            return result
        return json_response(result or {})

    view.handlers = handlers
    return view


def handler_for(schema: dict) -> Callable:
    """Decorate a handler ``fn(user, message, request=..., **kwargs)`` with its request schema."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def run(request, user, **kwargs):
            return fn(user, request_message(request, schema), request=request, **kwargs)

        run.schema = schema
        return run

    return wrap


@csrf_exempt
@login_not_required
def not_found(request, rest: str = ""):
    if not rest and request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        # the client prints "View run at <tracking URI>/#/experiments/…"; a person following it lands on
        # our experiments (the fragment never reaches the server). The client itself never asks for the root.
        return HttpResponseRedirect(reverse("experiments:list"))
    return error_response("ENDPOINT_NOT_FOUND", f"No MLflow endpoint {request.method} {request.path}.")
