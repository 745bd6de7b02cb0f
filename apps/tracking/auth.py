"""Who is calling: ``Authorization: Bearer <API token>`` (MLFLOW_TRACKING_TOKEN) or Basic
username and password (MLFLOW_TRACKING_USERNAME/PASSWORD). Sessions are never used here: these
routes are CSRF-exempt, so a browser's cookie must not be able to write through them."""

from __future__ import annotations

import base64
import binascii

from django.contrib.auth import authenticate as password_authenticate
from django.utils import timezone

from apps.accounts.models import ApiToken, hash_key
from apps.core import roles

from .errors import MlflowError

HOW = ("Set MLFLOW_TRACKING_TOKEN to an API token made at /accounts/tokens/ (or MLFLOW_TRACKING_USERNAME and "
       "MLFLOW_TRACKING_PASSWORD).")
# What each access level needs; admins (superusers) hold every capability.
ACCESS = {"read": "view_dashboard", "log": "launch_training", "register": "register_model"}
REFUSED = {
    "read": "Your account has no role on this site; ask an admin to add you to a group.",
    "log": "Your role can read but not log runs (ML engineers do).",
    "register": "Your role can read but not register models (ML engineers do).",
}


def _error(code: str, message: str) -> MlflowError:
    return MlflowError(code, message)


def _token_user(key: str):
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        raise _error("UNAUTHENTICATED", "Invalid or revoked API token. " + HOW)
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def _basic_user(request, encoded: str):
    try:
        decoded = base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise _error("UNAUTHENTICATED", "Malformed Basic credentials. " + HOW) from None
    username, sep, password = decoded.partition(":")
    user = password_authenticate(request, username=username, password=password) if sep and username else None
    if user is None or not user.is_active:
        raise _error("UNAUTHENTICATED", "Wrong username or password. " + HOW)
    return user


def authenticate(request):
    header = request.META.get("HTTP_AUTHORIZATION", "").strip()
    if not header:
        raise _error("UNAUTHENTICATED", "Authentication is required. " + HOW)
    scheme, _, credentials = header.partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme in ("bearer", "token") and credentials:
        return _token_user(credentials)
    if scheme == "basic" and credentials:
        return _basic_user(request, credentials)
    raise _error("UNAUTHENTICATED", "Unsupported Authorization header. " + HOW)


def require_access(user, access: str) -> None:
    if roles.SERVICE in roles.user_roles(user) and not user.is_superuser:
        raise _error("PERMISSION_DENIED", "Service accounts call the prediction API only; use a personal API token "
                                          "for the MLflow client.")
    if not roles.can(user, ACCESS[access]):
        raise _error("PERMISSION_DENIED", REFUSED[access])
