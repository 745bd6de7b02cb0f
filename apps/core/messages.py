"""Turning the errors services raise into what a page shows."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from apps.ml.errors import MLError

from .api_errors import Conflict


def error_messages(exc: Exception) -> dict[str, list[str]]:
    """Field -> messages for a form; errors of no field are under "general"."""
    if isinstance(exc, MLError):
        return {(exc.field or "general"): [exc.message]}
    if isinstance(exc, ValidationError):
        if not hasattr(exc, "error_dict"):
            return {"general": exc.messages}
        return {("general" if k == "__all__" else k): v for k, v in exc.message_dict.items()}
    if isinstance(exc, Conflict):
        return {"general": [str(exc.detail)]}
    return {"general": [str(exc)]}


def error_text(exc: Exception) -> str:
    """All of an error's messages in one line, for a flash message."""
    return " ".join(m for ms in error_messages(exc).values() for m in ms)
