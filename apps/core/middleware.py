"""Request middleware of the platform: who the client is (trusted proxies), the
Content-Security-Policy of every response, the JSON error envelope on API paths, and how many
requests a process runs at once.

Each class works under ASGI without a thread hop (sync and async capable, like the metrics
middleware): they run on every request.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from apps.core.sockets import LoopSemaphore

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class HookMiddleware:
    """A sync-and-async middleware made of two hooks: ``before`` the view, ``after`` it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        self.before(request)
        return self.after(request, await self.get_response(request))  # type: ignore[misc]

    def before(self, request: HttpRequest) -> None:
        return None

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        return response


# --- client address ------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            logger.warning("TRUSTED_PROXIES has an invalid entry %r; ignored", entry)
    return tuple(out)


def _trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The client's address: ``peer`` unless ``peer`` is a trusted proxy, in which case the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.

    Entries left of it were written by whoever sent the request and prove nothing; only the
    entries our own proxies appended can be believed, so the walk goes right to left.
    """
    networks = _networks(trusted)
    if not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer  # garbage from the client side of a proxy: use the proxy
    return hops[0] if hops else peer


class TrustedProxyMiddleware(HookMiddleware):
    """Makes ``REMOTE_ADDR`` the client's address for everything after it (DRF throttles with
    ``NUM_PROXIES = 0``, the login lockout, the metrics network check), believing
    ``X-Forwarded-For`` only when the direct peer is in ``TRUSTED_PROXIES``. The direct peer is
    kept in ``META["VRP_PEER_ADDR"]``.

    Without this, DRF (``NUM_PROXIES`` unset) keyed throttles on the raw header, so rotating it
    gave unlimited password tries against a daphne reached directly.
    """

    def before(self, request: HttpRequest) -> None:
        peer = request.META.get("REMOTE_ADDR", "")
        request.META["VRP_PEER_ADDR"] = peer
        trusted = tuple(getattr(settings, "TRUSTED_PROXIES", ()))
        request.META["REMOTE_ADDR"] = client_address(
            peer, request.META.get("HTTP_X_FORWARDED_FOR"), trusted
        )


# --- Content-Security-Policy ---------------------------------------------------------------
def content_security_policy(path: str) -> str:
    """The policy for a response to ``path``: ``CSP_DIRECTIVES`` plus, for a path under one of
    ``CSP_PATH_EXTRAS``' prefixes, the extra sources listed there (the API docs page loads
    Swagger UI from its CDN)."""
    directives: dict[str, list[str]] = {k: list(v) for k, v in settings.CSP_DIRECTIVES.items()}
    for prefix, extras in getattr(settings, "CSP_PATH_EXTRAS", {}).items():
        if path.startswith(prefix):
            for name, sources in extras.items():
                directives.setdefault(name, []).extend(sources)
    return "; ".join(f"{name} {' '.join(srcs)}".strip() for name, srcs in directives.items())


class ContentSecurityPolicyMiddleware(HookMiddleware):
    """A Content-Security-Policy on every response that has none: scripts and styles only from
    this origin (the pages have no inline script), no plugins, no framing, no ``<base>``."""

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        header = (
            "Content-Security-Policy-Report-Only"
            if getattr(settings, "CSP_REPORT_ONLY", False)
            else "Content-Security-Policy"
        )
        if header not in response:
            response[header] = content_security_policy(request.path)
        return response


# --- requests in flight --------------------------------------------------------------------
_request_slots = LoopSemaphore(lambda: int(settings.HTTP_MAX_CONCURRENCY))
_UNQUEUED = frozenset({"/healthz", "/readyz", "/metrics"})


class RequestSlotsMiddleware(HookMiddleware):
    """At most ``HTTP_MAX_CONCURRENCY`` requests of this process past this point at once; the
    others wait on the event loop, holding no thread and no database connection.

    Under ASGI each request runs its view on a thread of its own with a pooled connection
    (DB_POOL), so a burst of requests took every connection of the pool and the worker and
    session sockets' database calls (heartbeats among them) queued behind them: at 250
    simulated workers the workers went silent long enough to be declared dead (benchmarks/
    RESULTS.md, "Issue 23: placement"). Under WSGI (the test client) it passes through.
    """

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if request.path in _UNQUEUED:  # probes and scrapes answer even when the queue is long
            return await super()._acall(request)
        async with _request_slots():
            return await super()._acall(request)
