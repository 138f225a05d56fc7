from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.core import views as core_views

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    # Before admin/: the operator dashboard lives at /admin/dashboard/ and the admin's
    # catch-all would answer 404 for it.
    path("", include("apps.monitoring.urls")),
    path("admin/", admin.site.urls),
    # Sign-in, sign-out, sign-up, password change/reset, external providers (allauth).
    path("accounts/", include("allauth.urls")),
    path("o/", include("apps.accounts.oauth_urls", namespace="oauth2_provider")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/athena/", include("apps.accounts.api.urls")),
    path("api/hermes/", include("apps.sessions.api.urls")),
    path("api/daedalus/", include("apps.scenes.api.urls")),
    path("api/morpheus/", include("apps.streaming.api.urls")),
    path("api/delphi/", include("apps.monitoring.api.urls")),
    path("", include("apps.scenes.urls")),  # /create/: the creator page
    path("", include("apps.web.urls")),
]

handler400 = "apps.core.views.bad_request"
handler403 = "apps.core.views.permission_denied"
handler404 = "apps.core.views.not_found"
handler500 = "apps.core.views.server_error"
