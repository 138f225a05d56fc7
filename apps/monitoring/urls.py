"""Non-API routes of monitoring (``/metrics`` for Prometheus, operator dashboard pages)."""

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
