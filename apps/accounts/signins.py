"""Sign-ins: what a token belongs to, and the signal that says one has ended.

A *sign-in* is one login and every token it leads to: a platform token family
(``RefreshToken.family``, every refresh of one login) or an OAuth2 token family
(django-oauth-toolkit's ``RefreshToken.token_family``, every refresh of one authorization; a
token without a refresh token, e.g. client credentials, is a sign-in of its own). Its key is a
short string other apps record next to what the sign-in started (a stream) without importing
accounts' models:

- ``jwt:<family uuid>``
- ``oauth2:<token family uuid>``, or ``oauth2-token:<access token id>``

``signin_ended`` is sent after commit when a sign-in ends: sign-out, a replayed refresh token,
a password change or reset, an OAuth2 revocation. Apps above accounts (streaming) connect to it
and stop what the sign-in started; accounts never imports them.
"""

import logging
import uuid
from collections.abc import Iterable
from typing import Any

import django.dispatch
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from apps.accounts.authentication import TokenIdentity
from apps.accounts.models import RefreshToken
from apps.core.events import run_on_commit

logger = logging.getLogger(__name__)

# Sent after commit; kwargs: ``keys`` (list[str], sign-in keys), ``reason`` (str).
signin_ended = django.dispatch.Signal()


def jwt_signin_key(family: uuid.UUID) -> str:
    return f"jwt:{family}"


def signin_key_for_jwt(jti: str) -> str:
    """The sign-in of a platform access token ("" for one no refresh token issued)."""
    family = RefreshToken.objects.filter(access_jti=jti).values_list("family", flat=True).first()
    return jwt_signin_key(family) if family else ""


def signin_key_for_oauth2(access: Any) -> str:
    """The sign-in of a django-oauth-toolkit access token: its refresh token's family (the
    token it was refreshed from, or the one issued with it), else the token itself."""
    refresh_model = get_refresh_token_model()
    family = (
        refresh_model.objects.filter(
            Q(access_token_id=access.pk) | Q(pk=access.source_refresh_token_id or 0),
            token_family__isnull=False,
        )
        .values_list("token_family", flat=True)
        .first()
    )
    return f"oauth2:{family}" if family else f"oauth2-token:{access.pk}"


def signin_key(identity: Any) -> str:
    """The sign-in behind an authenticated request's identity (``request.auth``): "" for a
    cookie session or anything that is not a bearer token."""
    if not isinstance(identity, TokenIdentity) or not identity.jti:
        return ""
    if identity.kind == "jwt":
        return signin_key_for_jwt(identity.jti)
    pk = identity.jti.removeprefix("oauth2:")
    access = get_access_token_model().objects.filter(pk=int(pk)).first() if pk.isdigit() else None
    return signin_key_for_oauth2(access) if access is not None else ""


def oauth2_signin_is_live(key: str) -> bool:
    """Whether an OAuth2 sign-in still holds an unexpired access token (a refresh replaces
    the token it spends in the same transaction; a revocation leaves none)."""
    tokens = get_access_token_model().objects.filter(expires__gt=timezone.now())
    if key.startswith("oauth2-token:"):
        return tokens.filter(pk=int(key.removeprefix("oauth2-token:"))).exists()
    family = key.removeprefix("oauth2:")
    return tokens.filter(
        Q(refresh_token__token_family=family) | Q(source_refresh_token__token_family=family)
    ).exists()


def signins_end_notify(*, keys: Iterable[str], reason: str) -> None:
    """After commit, tell the apps above that these sign-ins ended."""
    ended = sorted({k for k in keys if k})
    if not ended:
        return

    def send() -> None:
        for receiver, result in signin_ended.send_robust(sender=None, keys=ended, reason=reason):
            if isinstance(result, Exception):
                logger.error("signin_ended receiver %r failed", receiver, exc_info=result)

    run_on_commit(send, what="signin_ended")
