from rest_framework import authentication, exceptions

from .services import TokenGuessingLocked, TokenRefused, api_token_authenticate


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>`` (or ``Bearer``) with a key from the API tokens page."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Token <key>'.")
        try:
            token = api_token_authenticate(request=request._request, key=header[1].decode(errors="replace"))
        except TokenGuessingLocked as exc:
            raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message) from None
        except TokenRefused as exc:
            raise exceptions.AuthenticationFailed(exc.message) from None
        return token.user, token

    def authenticate_header(self, request):
        return "Token"
