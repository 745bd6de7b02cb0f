from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.views import require_viewer

from .models import ApiToken
from .services import api_token_create, api_token_revoke


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
