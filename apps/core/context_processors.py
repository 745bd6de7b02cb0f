from . import roles

NAVIGATION = [
    ("home", "Overview"),
    ("datasets:list", "Datasets"),
    ("experiments:list", "Experiments"),
    ("registry:list", "Models"),
    ("deployments:list", "Deployments"),
    ("monitoring:overview", "Monitoring"),
    ("maturity:overview", "Maturity"),
]


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)
    namespace = match.namespace if match else ""
    current = match.view_name if match else ""
    items = []
    for url_name, label in NAVIGATION:
        ns = url_name.split(":")[0] if ":" in url_name else ""
        active = (ns and ns == namespace) or (not ns and current == url_name)
        items.append({"url_name": url_name, "label": label, "active": active})
    role = roles.primary_role(user)
    return {
        "nav_items": items,
        "user_role": role,
        "user_role_label": roles.ROLE_LABELS.get(role, "No role"),
        "can_view_audit": roles.can(user, "view_audit") or user.is_staff,
    }
