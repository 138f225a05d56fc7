"""``/metrics`` for Prometheus and the operator dashboard page (ElysiumUX)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from apps.monitoring.collector import render_metrics

logger = logging.getLogger(__name__)

DEFAULT_METRICS_NETWORKS = ("127.0.0.0/8", "::1/128")
VIEW_PERMISSION = "monitoring.view_metrics"


def _token_ok(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "") or ""
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[7:].strip().encode(), token.encode())


def _network_ok(request: HttpRequest) -> bool:
    networks = getattr(settings, "METRICS_ALLOWED_NETWORKS", DEFAULT_METRICS_NETWORKS)
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for cidr in networks:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            logger.warning("METRICS_ALLOWED_NETWORKS has an invalid entry %r", cidr)
    return False


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper needs the bearer ``METRICS_TOKEN`` or an address in
    ``METRICS_ALLOWED_NETWORKS`` (default loopback only). REMOTE_ADDR is the direct peer: scrape
    pods directly, not through the gateway, or the gateway's address is what is checked."""
    return _token_ok(request) or _network_ok(request)


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


def _dashboard(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Operator dashboard",
        "ws_path": "/ws/delphi/dashboard/",
        "grafana_url": getattr(settings, "GRAFANA_URL", ""),
    }
    return render(request, "monitoring/dashboard.html", context)


# admin_view: staff only, others are redirected to the admin login; never cached.
dashboard_view = admin.site.admin_view(_dashboard)
