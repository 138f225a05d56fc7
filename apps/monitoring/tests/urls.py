"""The root URLconf with monitoring's routes ahead of ``admin/``, the order the root URLconf
needs so ``/admin/dashboard/`` is not swallowed by the admin's catch-all."""

from django.urls import include, path

from vrplatform.urls import urlpatterns as root_patterns

urlpatterns = [path("", include("apps.monitoring.urls")), *root_patterns]
