"""Failed sign-ins and refused API tokens are audit events."""

from __future__ import annotations

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from apps.core.services import audit_record

from .throttle import client_ip, failure_limit, is_token_attempt


@receiver(user_login_failed, dispatch_uid="accounts.audit_failed_sign_in")
def audit_failed_sign_in(sender, credentials, request=None, **kwargs):
    # Axes' receiver (its app comes first) has counted this failure on the request by now.
    failures = getattr(request, "axes_failures_since_start", None)
    limit = failure_limit(request, credentials)
    if failures is not None and failures > limit:
        return  # already locked out: axes keeps counting, the audit log does not fill up
    token = is_token_attempt(credentials)
    locked = failures is not None and failures >= limit
    if token:
        action = "api_token.locked_out" if locked else "api_token.refused"
    else:
        action = "auth.locked_out" if locked else "auth.login_failed"
    username = "" if token else str(credentials.get("username", ""))[:150]
    audit_record(
        actor=None,
        action=action,
        note=f"{'an API token' if token else repr(username)} from {client_ip(request) if request else 'unknown'}",
        after={"username": username, "ip": client_ip(request) if request else "", "failures": failures,
               "path": request.path if request else ""},
    )
