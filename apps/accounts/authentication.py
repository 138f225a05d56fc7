"""Bearer authentication shared by the REST API and the WebSocket consumers.

A bearer token is either a platform JWT (three dot-separated parts) or an OAuth2 access token
issued by django-oauth-toolkit (opaque). ``authenticate_bearer`` accepts both and returns who
the caller is, until when, and (for OAuth2) which scopes narrow their permissions.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from apps.accounts.models import User
from apps.accounts.scopes import ENDPOINT_SCOPES, endpoint_scope_allows
from apps.accounts.tokens import access_token_decode, looks_like_jwt
from apps.core.errors import AuthenticationFailed


@dataclass(frozen=True)
class TokenIdentity:
    user: User
    kind: Literal["jwt", "oauth2"]
    expires_at: datetime
    jti: str | None = None
    scopes: frozenset[str] | None = None  # None: a platform JWT, the user's full permissions


def authenticate_bearer(token: str) -> TokenIdentity:
    """Resolve a bearer token to an identity, or raise ``AuthenticationFailed`` with a code
    (``token_expired``, ``token_invalid``, ``token_revoked``, ``user_inactive``)."""
    if not token or len(token) > 4096 or not token.isascii():  # tokens are ASCII; "\ud800" too
        raise AuthenticationFailed("The token is invalid.", code="token_invalid")
    if looks_like_jwt(token):
        claims = access_token_decode(token)
        user = User.objects.filter(pk=claims.user_id).first()
        if user is None:
            raise AuthenticationFailed("The token's user does not exist.", code="token_invalid")
        identity = TokenIdentity(user, "jwt", claims.expires_at, jti=claims.jti)
    else:
        identity = _authenticate_oauth2(token)
    if not identity.user.is_active:
        raise AuthenticationFailed("This account is disabled.", code="user_inactive")
    return identity


def _authenticate_oauth2(token: str) -> TokenIdentity:
    checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
    access = (
        get_access_token_model()
        .objects.select_related("user", "application__user")
        .filter(token_checksum=checksum)
        .first()
    )
    if access is None:
        raise AuthenticationFailed("The access token is invalid.", code="token_invalid")
    if access.is_expired():
        raise AuthenticationFailed("The access token has expired.", code="token_expired")
    # Client-credentials tokens carry no user: they act as the application's owner, narrowed
    # by their scopes (a service account).
    user = access.user or (access.application.user if access.application else None)
    if user is None:
        raise AuthenticationFailed("The token is not bound to an account.", code="token_invalid")
    scopes = frozenset(access.scope.split())
    return TokenIdentity(
        user, "oauth2", access.expires, jti=oauth2_socket_key(access.pk), scopes=scopes
    )


def oauth2_socket_key(access_token_pk: int) -> str:
    """The ``jti`` an OAuth2 identity carries, so revoking that token can name its sockets."""
    return f"oauth2:{access_token_pk}"


class PlatformBearerAuthentication(BaseAuthentication):
    """``Authorization: Bearer <platform JWT | OAuth2 access token>``."""

    def authenticate(self, request: Request) -> tuple[User, TokenIdentity] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header.", code="token_invalid"
            )
        try:
            identity = authenticate_bearer(parts[1].decode("ascii"))
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(
                "The token is invalid.", code="token_invalid"
            ) from exc
        except AuthenticationFailed as exc:
            raise exceptions.AuthenticationFailed(exc.message, code=exc.code) from exc
        if identity.scopes is not None:
            _require_endpoint_scope(request, identity.scopes)
        return identity.user, identity

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _require_endpoint_scope(request: Request, scopes: frozenset[str]) -> None:
    """An OAuth2 token needs one of the scopes its endpoint declares (``scopes.py``); a 403
    ``insufficient_scope`` (RFC 6750) names them."""
    match = request._request.resolver_match
    name = match.url_name if match else None
    if endpoint_scope_allows(name, scopes):
        return
    needed = sorted(ENDPOINT_SCOPES.get(name or "") or ())
    raise exceptions.PermissionDenied(
        f"This token's scopes do not cover this endpoint (needs one of: {', '.join(needed)})."
        if needed
        else "This endpoint does not accept OAuth2 tokens.",
        code="insufficient_scope",
    )


def identity_expired(identity: Any) -> bool:
    return isinstance(identity, TokenIdentity) and identity.expires_at <= timezone.now()
