from rest_framework.permissions import BasePermission

from . import roles


class HasRole(BasePermission):
    """Signed in and holding one of the site's roles (a user with none sees nothing)."""

    message = "Your account has no role on this site; ask an admin to add you to a group."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        needed = getattr(view, "required_capability", "view_dashboard")
        return roles.can(user, needed)
