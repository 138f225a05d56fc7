"""ICE servers for a stream's two ends: STUN, and TURN with short-lived per-user credentials.

The TURN REST scheme that coturn's ``use-auth-secret`` implements: the username is
``"<expiry unix time>:<user id>"`` and the password is ``base64(HMAC-SHA1(secret, username))``.
coturn recomputes the HMAC with its ``static-auth-secret`` and refuses expired usernames, so
the platform hands out credentials, never the secret, and a credential names its user (one
user's password does not work with another's username).

The browser gets the configuration with each offer (``morpheus:render_started``) and from
``GET /api/morpheus/ice_servers`` (renewal before expiry, ICE restart, the lobby pre-flight);
the worker gets its own with each ``stream_start`` (the stream's user, so a relay's usage is
attributable to a user in coturn's logs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

from django.conf import settings


def turn_credentials(*, user_id: int | str, now: float | None = None) -> tuple[str, str, int]:
    """``(username, credential, expires_at unix s)`` for ``user_id``, valid for
    ``TURN_CREDENTIAL_TTL_S`` from ``now``."""
    expires = int(now if now is not None else time.time()) + int(settings.TURN_CREDENTIAL_TTL_S)
    username = f"{expires}:{user_id}"
    return username, turn_password(username, settings.TURN_SHARED_SECRET), expires


def turn_password(username: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def ice_config(*, user_id: int | str, now: float | None = None) -> dict[str, Any]:
    """What an RTCPeerConnection of ``user_id``'s stream is configured with:
    ``{ice_servers, ice_transport_policy, expires_at}`` (``expires_at``: unix s when the TURN
    credentials expire, null without TURN). Empty servers: host candidates only (a LAN)."""
    servers: list[dict[str, Any]] = []
    if settings.STUN_URLS:
        servers.append({"urls": list(settings.STUN_URLS)})
    expires_at = None
    if settings.TURN_URLS:
        username, credential, expires_at = turn_credentials(user_id=user_id, now=now)
        servers.append(
            {"urls": list(settings.TURN_URLS), "username": username, "credential": credential}
        )
    return {
        "ice_servers": servers,
        "ice_transport_policy": settings.ICE_TRANSPORT_POLICY,
        "expires_at": expires_at,
    }
