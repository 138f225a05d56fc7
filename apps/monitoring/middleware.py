"""HTTP request metrics, labelled by the resolved route pattern so cardinality stays bounded."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from apps.monitoring.metrics import observe_http

UNMATCHED = "<unmatched>"


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served ``request`` (``api/hermes/session_end/<uuid:pk>``), never the
    raw path: raw paths carry ids and would mint a new time series per object."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return UNMATCHED
    return "/" + (match.route or match.view_name or UNMATCHED)


class MetricsMiddleware:
    """Observe every request's latency in ``vrplatform_http_request_duration_seconds``.

    Put it first in ``MIDDLEWARE`` so the time includes the other middleware.
    """

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
        started = time.perf_counter()
        response: HttpResponseBase = self.get_response(request)
        self._observe(request, response, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        started = time.perf_counter()
        response: HttpResponseBase = await self.get_response(request)  # type: ignore[misc]
        self._observe(request, response, started)
        return response

    @staticmethod
    def _observe(request: HttpRequest, response: HttpResponseBase, started: float) -> None:
        observe_http(
            route_of(request),
            request.method or "OTHER",
            response.status_code,
            time.perf_counter() - started,
        )
