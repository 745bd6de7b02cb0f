"""POST /api/v1/predict/{model}/{environment}/ — the hot path, kept off DRF on purpose.

DRF's request wrapping, content negotiation and serializers cost more than the model
itself for one instance; this view authenticates, parses JSON once with orjson, and maps
serving's errors to answers. A token request costs one query (``serving.token_target``:
the token, its user's right and the active deployment together), with no cache to go
stale. The model warmer is started by the web process (``mlops_web/wsgi.py``), not here.
"""

from __future__ import annotations

import time

import orjson
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from apps.core.api_errors import error_body

from .serving import ServingError, active_target, predict_and_log, session_caller, token_target

MAX_REPORTED_ERRORS = 100


def _csrf_failure(request) -> str | None:
    check = CsrfViewMiddleware(lambda r: None)
    check.process_request(request)
    response = check.process_view(request, None, (), {})
    return None if response is None else "CSRF check failed: send the X-CSRFToken header with session requests."


def _error(status: int, code: str, message: str, fields: dict | None = None, **extra) -> JsonResponse:
    body = error_body(code, message, fields)
    body["error"].update(extra)
    return JsonResponse(body, status=status)


def _caller(request, model: str, environment: str):
    """(caller, active deployment or None, refusal or None); for a token, one query finds both."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key:
            return None, None, _error(401, "not_authenticated", "Invalid Authorization header: expected 'Token <key>'.")
        caller, target = token_target(key.strip(), model, environment)
        if caller is None:
            return None, None, _error(401, "not_authenticated", "Invalid or revoked API token.")
        return caller, target, None
    user = request.user
    if not user.is_authenticated:
        return None, None, _error(401, "not_authenticated", "Send an API token (Authorization: Token <key>) or sign in.")
    failure = _csrf_failure(request)
    if failure:
        return None, None, _error(403, "csrf_failed", failure)
    return session_caller(user), active_target(model, environment), None


def _serving_error(exc: ServingError) -> JsonResponse:
    if exc.status != 400:
        return _error(exc.status, exc.code, exc.message)
    fields = {}
    for err in exc.problems[:MAX_REPORTED_ERRORS]:
        where = "instances" if err.get("instance") is None else f"instances[{err['instance']}]"
        fields[f"{where}.{err['field']}" if err.get("field") else where] = err["message"]
    return _error(400, exc.code, exc.message, fields, details=exc.problems[:MAX_REPORTED_ERRORS],
                  total_problems=exc.total)


@csrf_exempt
def predict(request, model: str, environment: str):
    started = time.perf_counter()
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Use POST with {\"instances\": [...]}.")
    caller, target, refusal = _caller(request, model, environment)
    if refusal is not None:
        return refusal
    if not caller.may_predict:
        return _error(403, "permission_denied", "Your role does not allow predictions.")
    try:
        payload = orjson.loads(request.body.removeprefix(b"\xef\xbb\xbf") or b"null")  # a UTF-8 BOM is tolerated
    except orjson.JSONDecodeError as exc:
        return _error(400, "invalid_json", f"The body is not valid JSON: {exc}.", {"body": "invalid JSON"})
    if not isinstance(payload, dict) or "instances" not in payload:
        return _error(400, "invalid", "Send {\"instances\": [{feature: value, ...}, ...]}.",
                      {"instances": "This field is required."})
    if target is None:
        return _error(404, "not_deployed", f"No active deployment of {model!r} in {environment!r}.")
    try:
        body = predict_and_log(target=target, instances=payload["instances"], source=caller.source, started=started)
    except ServingError as exc:
        return _serving_error(exc)
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), content_type="application/json")
