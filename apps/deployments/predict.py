"""POST /api/v1/predict/{model}/{environment}/ — the hot path, kept off DRF on purpose.

DRF's request wrapping, content negotiation and serializers cost more than the model
itself for one instance; this view parses JSON once, authenticates with a short-lived
per-process cache, and parses and answers with orjson.
"""

from __future__ import annotations

import threading
import time

import orjson
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.models import ApiToken, hash_key
from apps.core import roles
from apps.core.api_errors import error_body
from apps.ml.serving import InputError

from . import runtime
from .services import ServingUnavailable, active_target, predict_and_log

MAX_REPORTED_ERRORS = 100
TOKEN_CACHE_SECONDS = 10.0  # a revoked token stops working within this many seconds
_tokens: dict[str, tuple[float, object]] = {}
_tokens_lock = threading.Lock()


def _token_user(key: str):
    digest = hash_key(key)
    now = time.monotonic()
    hit = _tokens.get(digest)
    if hit and now - hit[0] < TOKEN_CACHE_SECONDS:
        return hit[1]
    token = ApiToken.objects.select_related("user").filter(key_hash=digest, revoked_at__isnull=True).first()
    user = token.user if token and token.user.is_active else None
    if user is not None:
        user._can_predict = roles.can(user, "predict")
    with _tokens_lock:
        if len(_tokens) > 10_000:
            _tokens.clear()
        _tokens[digest] = (now, user)
    return user


def _csrf_failure(request) -> str | None:
    check = CsrfViewMiddleware(lambda r: None)
    check.process_request(request)
    response = check.process_view(request, None, (), {})
    return None if response is None else "CSRF check failed: send the X-CSRFToken header with session requests."


def _error(status: int, code: str, message: str, fields: dict | None = None, **extra) -> JsonResponse:
    body = error_body(code, message, fields)
    body["error"].update(extra)
    return JsonResponse(body, status=status)


@csrf_exempt
def predict(request, model: str, environment: str):
    started = time.perf_counter()
    runtime.start_warmer()  # once per process: keeps every active deployment loaded ahead of traffic
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Use POST with {\"instances\": [...]}.")
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, key = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or not key:
            return _error(401, "not_authenticated", "Invalid Authorization header: expected 'Token <key>'.")
        user = _token_user(key.strip())
        if user is None:
            return _error(401, "not_authenticated", "Invalid or revoked API token.")
        allowed = user._can_predict
    else:
        user = request.user
        if not user.is_authenticated:
            return _error(401, "not_authenticated", "Send an API token (Authorization: Token <key>) or sign in.")
        failure = _csrf_failure(request)
        if failure:
            return _error(403, "csrf_failed", failure)
        allowed = roles.can(user, "predict")
    if not allowed:
        return _error(403, "permission_denied", "Your role does not allow predictions.")
    try:
        payload = orjson.loads(request.body.removeprefix(b"\xef\xbb\xbf") or b"null")  # a UTF-8 BOM is tolerated
    except orjson.JSONDecodeError as exc:
        return _error(400, "invalid_json", f"The body is not valid JSON: {exc}.", {"body": "invalid JSON"})
    if not isinstance(payload, dict) or "instances" not in payload:
        return _error(400, "invalid", "Send {\"instances\": [{feature: value, ...}, ...]}.",
                      {"instances": "This field is required."})
    target = active_target(model, environment)
    if target is None:
        return _error(404, "not_deployed", f"No active deployment of {model!r} in {environment!r}.")
    try:
        body = predict_and_log(target=target, instances=payload["instances"], started=started)
    except InputError as exc:
        fields = {}
        for err in exc.errors[:MAX_REPORTED_ERRORS]:
            where = "instances" if err.get("instance") is None else f"instances[{err['instance']}]"
            key = f"{where}.{err['field']}" if err.get("field") else where
            fields[key] = err["message"]
        return _error(400, "invalid_instances", exc.message, fields, details=exc.errors[:MAX_REPORTED_ERRORS],
                      total_problems=exc.total)
    except ServingUnavailable as exc:
        return _error(503, exc.code, exc.message)
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), content_type="application/json")
