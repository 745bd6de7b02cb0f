"""The password of the demo users, which ``make run`` prints and ``seed_demo`` sets."""

from __future__ import annotations

import secrets

from django.conf import settings


def demo_password() -> str:
    """DEMO_PASSWORD when set, else one generated once and kept under var/."""
    if settings.DEMO_PASSWORD:
        return settings.DEMO_PASSWORD
    path = settings.VAR_DIR / "demo_password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password
