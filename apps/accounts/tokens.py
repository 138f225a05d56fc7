"""Platform JWT access tokens (HS256, ``JWT_SECRET``) and their short-lived denylist.

Claims: ``sub`` (user id), ``exp``, ``iat``, ``jti``, ``roles``, ``iss``, ``typ``. Decoding pins
the algorithm list, so ``alg: none`` and RS/HS confusion are refused.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.core.cache import cache

from apps.core.errors import AuthenticationFailed

_DENY_PREFIX = "athena:jwt-deny:"


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    jti: str
    issued_at: datetime
    expires_at: datetime
    roles: tuple[str, ...]


def access_token_encode(
    *, user_id: int, roles: list[str], now: datetime | None = None
) -> tuple[str, AccessClaims]:
    now = now or datetime.now(UTC)
    expires = now + settings.JWT_ACCESS_TTL
    jti = secrets.token_hex(16)
    payload = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": jti,
        "roles": sorted(roles),
        "iss": settings.JWT_ISSUER,
        "typ": "access",
    }
    token = jwt.encode(payload, settings.JWT_SECRET, algorithm=settings.JWT_ALGORITHM)
    claims = AccessClaims(user_id, jti, now, expires.replace(microsecond=0), tuple(sorted(roles)))
    return token, claims


def access_token_decode(token: str) -> AccessClaims:
    """Verify signature, expiry and type; raise ``AuthenticationFailed`` with a precise code."""
    try:
        payload = jwt.decode(
            token,
            settings.JWT_SECRET,
            algorithms=[settings.JWT_ALGORITHM],
            issuer=settings.JWT_ISSUER,
            options={"require": ["sub", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("The access token has expired.", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("The access token is invalid.", code="token_invalid") from exc
    if payload.get("typ") != "access":
        raise AuthenticationFailed("Not an access token.", code="token_invalid")
    try:
        user_id = int(payload["sub"])
    except (TypeError, ValueError) as exc:
        raise AuthenticationFailed("The access token is invalid.", code="token_invalid") from exc
    if access_token_is_denied(str(payload["jti"])):
        raise AuthenticationFailed("The access token has been revoked.", code="token_revoked")
    return AccessClaims(
        user_id=user_id,
        jti=str(payload["jti"]),
        issued_at=datetime.fromtimestamp(payload["iat"], UTC),
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        roles=tuple(payload.get("roles") or ()),
    )


def access_token_deny(*, jti: str, expires_at: datetime) -> None:
    """Reject this token from now until it would expire anyway."""
    ttl = int((expires_at - datetime.now(UTC)).total_seconds()) + 1
    if ttl > 0:
        cache.set(_DENY_PREFIX + jti, 1, timeout=ttl)


def access_token_is_denied(jti: str) -> bool:
    return cache.get(_DENY_PREFIX + jti) is not None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2
