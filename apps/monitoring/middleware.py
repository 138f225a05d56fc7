"""HTTP request metrics, labelled by the resolved route pattern so cardinality stays bounded."""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponseBase

from apps.core.instruments import observe_http
from apps.core.middleware import HookMiddleware

UNMATCHED = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served ``request`` (``api/hermes/session_end/<uuid:pk>``), never the
    raw path: raw paths carry ids and would mint a new time series per object."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return "/" + (match.route or match.view_name or UNMATCHED)


class MetricsMiddleware(HookMiddleware):
    """Observe every request's latency in ``vrplatform_http_request_duration_seconds``.

    Put it first in ``MIDDLEWARE`` so the time includes the other middleware.
    """

    def before(self, request: HttpRequest) -> None:
        request._metrics_started = time.perf_counter()  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        started: float = request._metrics_started  # type: ignore[attr-defined]
        observe_http(
            route_of(request),
            request.method or "OTHER",
            response.status_code,
            time.perf_counter() - started,
        )
        return response
