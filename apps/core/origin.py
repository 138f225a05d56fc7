"""Origin check for WebSockets.

Browsers always send ``Origin``. It must be the same origin the socket was opened on (scheme,
host and port of the ``Host`` header, a host ``ALLOWED_HOSTS`` accepts) or one of
``CORS_ORIGINS`` / ``CSRF_TRUSTED_ORIGINS``, compared as whole origins: scheme, host *and port*
(default ports 80/443 filled in). Cookies are not isolated by port, so a page on another port of
an allowed host (``http://127.0.0.1:9999``) must not ride an admin's session cookie; that is
cross-site WebSocket hijacking. Native clients (headsets, streaming workers) send no ``Origin``;
they are allowed through because every socket authenticates with a bearer token, never a cookie.
"""

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

_DEFAULT_PORTS = {"http": 80, "https": 443}


class Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class OriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        origin = _header(scope, b"origin")
        if origin is None or origin_allowed(origin, scope):
            return await self.application(scope, receive, send)
        denier = WebsocketDenier()
        return await denier(scope, receive, send)


def parse_origin(value: str) -> Origin | None:
    """``scheme://host[:port]`` as a comparable triple; None for anything else (``null``)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return Origin(scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme])


def _own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin the socket was opened on, as Django's CSRF check computes it for HTTP."""
    host = _header(scope, b"host")
    if not host:
        return None
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    secure = scope.get("scheme") in ("wss", "https")
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:  # ("HTTP_X_FORWARDED_PROTO", "https") → the x-forwarded-proto header
        name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        forwarded = _header(scope, name)
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip() == proxy_header[1]
    return parse_origin(f"{'https' if secure else 'http'}://{host}")


def origin_allowed(origin: str, scope: dict[str, Any] | None = None) -> bool:
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    trusted = [*settings.CORS_ALLOWED_ORIGINS, *getattr(settings, "CSRF_TRUSTED_ORIGINS", [])]
    if any(parsed == parse_origin(entry) for entry in trusted):
        return True
    return scope is not None and parsed == _own_origin(scope)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None
