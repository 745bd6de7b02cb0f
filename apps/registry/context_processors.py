from .services import pending_count_for


def pending_promotions(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"pending_promotions": pending_count_for(user)}
