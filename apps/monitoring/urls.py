"""Non-API routes of monitoring (``/metrics`` for Prometheus, operator dashboard pages).

``admin/dashboard/`` must be matched before ``admin.site.urls`` (whose catch-all answers 404
for unknown admin paths), so this module is included ahead of ``admin/`` in the root URLconf.
"""

from django.urls import URLPattern, URLResolver, path

from apps.monitoring import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", views.metrics_view, name="metrics"),
    path("admin/dashboard/", views.dashboard_view, name="monitoring-dashboard"),
]
