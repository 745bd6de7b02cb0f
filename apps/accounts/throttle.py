"""Throttling of password and token guessing, on django-axes.

Axes counts failures in its own database tables, so every gunicorn process and the
embedded SQLite mode see the same counts (there is no per-process counter to outrun by
spreading requests). Sign-ins, on the login page and the admin's, are locked per username
and client address after ``LOGIN_FAILURE_LIMIT`` failures; API tokens per client address
after ``API_TOKEN_FAILURE_LIMIT``. A lock lasts ``LOGIN_COOLOFF_MINUTES`` after the last
failure; an admin lifts it early by deleting the access attempt in the admin. The
answer to a locked-out caller is ``accounts.views.lockout_response``.
"""

from __future__ import annotations

import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

# What an API token failure is counted under in axes' username column: every token a
# client address tries counts towards one limit for that address.
TOKEN_CREDENTIALS = {"username": "(api token)"}


def is_token_attempt(credentials: dict | None) -> bool:
    return (credentials or {}).get("username") == TOKEN_CREDENTIALS["username"]


def failure_limit(request, credentials) -> int:
    return settings.API_TOKEN_FAILURE_LIMIT if is_token_attempt(credentials) else settings.LOGIN_FAILURE_LIMIT


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address
    the outermost of them saw (X-Forwarded-For entries further left are the client's word)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if proxies and len(forwarded) >= proxies:
        return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR", "")


def retry_after_seconds(request, credentials) -> int:
    """Seconds until the lock on these credentials from this address ends."""
    cool_off = get_cool_off(request).total_seconds()
    AxesProxyHandler.update_request(request)
    attempts = AxesProxyHandler.get_implementation().get_user_attempts(request, credentials)
    latest = max((a for qs in attempts if (a := qs.aggregate(t=Max("attempt_time"))["t"])), default=None)
    if latest is None:
        return math.ceil(cool_off)
    return max(1, math.ceil(cool_off - (timezone.now() - latest).total_seconds()))
