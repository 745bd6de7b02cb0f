"""Roles are Django groups; capabilities are the ``core.*`` permissions they carry."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

VIEWER = "viewer"
ML_ENGINEER = "ml_engineer"
ANALYST = "analyst"
SERVICE = "service"
ADMIN = "admin"
ROLE_GROUPS = (VIEWER, ML_ENGINEER, ANALYST, SERVICE)
ROLE_LABELS = {
    VIEWER: "Viewer",
    ML_ENGINEER: "ML engineer",
    ANALYST: "Analyst",
    SERVICE: "Service account",
    ADMIN: "Admin",
}

# The permissions each group receives (accounts' data migration grants them).
GROUP_PERMISSIONS = {
    VIEWER: ["view_dashboard", "predict"],
    ML_ENGINEER: [
        "view_dashboard",
        "predict",
        "upload_dataset",
        "override_validation",
        "launch_training",
        "register_model",
        "request_promotion",
        "deploy_nonproduction",
    ],
    ANALYST: ["view_dashboard", "predict", "decide_promotion", "deploy_production", "deploy_nonproduction"],
    SERVICE: ["predict"],
}


def user_roles(user) -> list[str]:
    """The user's roles, cached on the user object for the request."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_mlops_roles", None)
    if cached is None:
        names = {g.name for g in user.groups.all()}
        cached = [r for r in ROLE_GROUPS if r in names]
        if user.is_staff:
            cached.insert(0, ADMIN)
        user._mlops_roles = cached
    return cached


def primary_role(user) -> str | None:
    roles = user_roles(user)
    return roles[0] if roles else None


def has_any_role(user) -> bool:
    return bool(user_roles(user))


# Staff users are admins: whatever their groups, they read everything and the audit log.
STAFF_CAPABILITIES = {"view_dashboard", "view_audit"}


def can(user, capability: str) -> bool:
    if not (getattr(user, "is_authenticated", False) and user.is_active):
        return False
    if user.is_staff and capability in STAFF_CAPABILITIES:
        return True
    return user.has_perm(f"core.{capability}")


def acts_on_models(user) -> bool:
    """Engineers, analysts, admins and service accounts: more than reading and trying predictions."""
    return bool(set(user_roles(user)) & {ML_ENGINEER, ANALYST, SERVICE, ADMIN})


def require(user, capability: str, *, message: str | None = None) -> None:
    """Raise PermissionDenied unless the user holds the capability."""
    if not can(user, capability):
        raise PermissionDenied(message or f"Your role does not allow this ({capability.replace('_', ' ')}).")
