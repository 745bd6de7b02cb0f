from __future__ import annotations

from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest, QueryDict
from django.utils import timezone

from apps.core import roles
from apps.core.services import audit_record

from .models import TOKEN_PREFIX_LENGTH, ApiToken, hash_key
from .throttle import TOKEN_CREDENTIALS, retry_after_seconds


def role_groups_ensure() -> None:
    """Make sure every role group exists with exactly its capabilities.

    The data migration does this once; this repairs a database whose groups were
    flushed or edited, and is what ``seed_demo`` and the test fixtures call.
    """
    for group_name, codenames in roles.GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = Permission.objects.filter(content_type__app_label="core", codename__in=codenames)
        missing = set(codenames) - {p.codename for p in permissions}
        if missing:
            raise RuntimeError(f"capability permissions missing (run migrate): {sorted(missing)}")
        group.permissions.set(permissions)


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """Create a token and return it with its key, which is never stored in clear."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the token a name, such as the service that will use it."})
    if len(name) > 100:
        raise ValidationError({"name": "A token name has at most 100 characters."})
    if not roles.has_any_role(user):
        raise ValidationError({"name": "Your account has no role, so a token would grant nothing."})
    taken = ValidationError({"name": f"You already have an active token named {name!r}."})
    if ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        raise taken
    key = ApiToken.new_key()
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                user=user, name=name, prefix=key[4 : 4 + TOKEN_PREFIX_LENGTH], key_hash=hash_key(key)
            )
            audit_record(actor=user, action="api_token.create", obj=token, after={"name": name})
    except IntegrityError:  # a double click: the other request created it
        raise taken from None
    return token, key


class TokenRefused(Exception):
    """The key matches no live token of an active user (a 401)."""

    message = "Invalid or revoked API token."


class TokenGuessingLocked(Exception):
    """This client address sent too many invalid tokens lately (a 429 with Retry-After)."""

    def __init__(self, retry_after: int):
        super().__init__(f"Too many invalid API tokens from your address; try again in {retry_after} seconds.")
        self.retry_after = retry_after
        self.message = str(self)


def api_token_authenticate(*, request: HttpRequest, key: str) -> ApiToken:
    """The live token for ``key``, unless the caller's address guessed too many keys lately.

    Every invalid key counts (django-axes, in the database, so across processes); past
    ``API_TOKEN_FAILURE_LIMIT`` the address is refused, even with a right key, until the
    cool-off ends. Raises ``TokenRefused`` or ``TokenGuessingLocked``. ``request`` is
    Django's request (a DRF view passes ``request._request``). The predict view calls
    this too, for keys its own cache does not know.
    """
    if not AxesProxyHandler.is_allowed(request, TOKEN_CREDENTIALS):
        raise TokenGuessingLocked(retry_after_seconds(request, TOKEN_CREDENTIALS))
    token = ApiToken.objects.select_related("user").filter(key_hash=hash_key(key), revoked_at__isnull=True).first()
    if token is not None and token.user.is_active:
        now = timezone.now()
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token
    # The request is refused, so nothing reads its form; axes records request.POST with a
    # failure, which would otherwise parse a multipart body and stream its files to disk.
    request.POST = QueryDict()
    user_login_failed.send(sender=__name__, credentials=TOKEN_CREDENTIALS, request=request)
    if getattr(request, "axes_locked_out", False):
        raise TokenGuessingLocked(retry_after_seconds(request, TOKEN_CREDENTIALS))
    raise TokenRefused()


def api_token_revoke(*, user, token: ApiToken) -> ApiToken:
    if token.user_id != user.pk and not user.is_staff:
        raise ValidationError("You can only revoke your own tokens.")
    with transaction.atomic():
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(actor=user, action="api_token.revoke", obj=token, before={"active": True}, after={"active": False})
    return token


def user_deactivate(*, actor, user) -> None:
    """What an admin does instead of deleting an account that acted: it keeps its history."""
    if not actor.is_staff:
        raise PermissionDenied("Only admins deactivate accounts.")
    with transaction.atomic():
        if user.is_active:
            user.is_active = False
            user.save(update_fields=["is_active"])
            audit_record(actor=actor, action="user.deactivate", obj=user, before={"active": True},
                         after={"active": False})


SYSTEM_USERNAME = "mlops-system"


def system_user():
    """The account automated workflows act as (retraining, CI): an ML engineer that cannot log in."""
    User = get_user_model()
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"first_name": "MLOps", "last_name": "automation"}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user.groups.add(Group.objects.get(name=roles.ML_ENGINEER))
    return user
