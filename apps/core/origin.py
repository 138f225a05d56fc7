"""Origin check for WebSockets.

Browsers always send ``Origin``; it must be one of ``ALLOWED_HOSTS`` or ``CORS_ORIGINS``, which
stops cross-site WebSocket hijacking. Native clients (headsets, streaming workers) send none;
they are allowed through because every socket authenticates with a bearer token, never a cookie.
"""

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import is_same_domain


class OriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if origin is None or origin_allowed(origin):
            return await self.application(scope, receive, send)
        denier = WebsocketDenier()
        return await denier(scope, receive, send)


def origin_allowed(origin: str) -> bool:
    if origin in settings.CORS_ALLOWED_ORIGINS:
        return True
    host = urlsplit(origin).hostname
    if not host:
        return False
    return any(
        pattern == "*" or is_same_domain(host, pattern.strip("[]"))
        for pattern in settings.ALLOWED_HOSTS
    )


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None
