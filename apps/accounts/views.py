import math

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.api_errors import error_body
from apps.core.views import require_viewer

from .models import ApiToken
from .services import api_token_create, api_token_revoke
from .throttle import retry_after_seconds


def token_list(request):
    require_viewer(request)
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": tokens})


@require_POST
def token_create(request):
    require_viewer(request)
    try:
        token, key = api_token_create(user=request.user, name=request.POST.get("name", ""))
    except ValidationError as exc:
        tokens = ApiToken.objects.filter(user=request.user)
        errors = exc.message_dict.get("name") if hasattr(exc, "error_dict") else exc.messages
        return render(
            request,
            "accounts/tokens.html",
            {"tokens": tokens, "errors": errors, "name": request.POST.get("name", "")},
            status=400,
        )
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/tokens.html", {"tokens": tokens, "new_token": token, "new_key": key})


@require_POST
def token_revoke(request, pk: int):
    require_viewer(request)
    token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    api_token_revoke(user=request.user, token=token)
    messages.success(request, f"Token {token.name!r} revoked; clients using it are refused from now on.")
    return redirect("accounts:tokens")


def _wait_text(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}" if seconds >= 60 else f"{seconds} seconds"


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """Axes' answer to a locked-out caller: 429 with Retry-After, JSON under /api/."""
    seconds = retry_after_seconds(request, credentials)
    if request.path.startswith("/api/"):
        message = f"Too many invalid API tokens from your address; try again in {_wait_text(seconds)}."
        response = JsonResponse(error_body("throttled", message), status=429)
    else:
        message = f"Too many failed sign-ins for this account from your address; try again in {_wait_text(seconds)}."
        response = render(request, "accounts/login.html", {"locked_out": message, "form": None}, status=429)
    response["Retry-After"] = str(seconds)
    return response
