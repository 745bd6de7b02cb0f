from rest_framework.permissions import BasePermission

from . import roles


class HasRole(BasePermission):
    """Signed in and holding one of the site's roles (a user with none sees nothing)."""

    message = "Your account has no role on this site; ask an admin to add you to a group."

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not roles.can(user, "view_dashboard") and not getattr(view, "service_accounts_allowed", False):
            return False
        needed = getattr(view, "required_capabilities", {}).get(request.method)
        if needed and not roles.can(user, needed):
            self.message = f"Your role does not allow this ({needed.replace('_', ' ')})."
            return False
        return True
