"""``/o/``: the OAuth2/OIDC endpoints the platform serves (django-oauth-toolkit).

Not everything of ``oauth2_provider.urls``: its application management pages let any
signed-in participant register a client (any name, redirect URI and grant) that an admin might
then authorize on the platform's own consent page; dynamic client registration is left out
for the same reason. Clients are registered by admins in the Django admin ("Applications").
A user can still see and withdraw the clients they authorized (``authorized_tokens/``).
"""

from django.urls import path
from oauth2_provider import urls as dot_urls
from oauth2_provider import views

from apps.accounts.oauth_views import (
    PlatformAuthorizationView,
    ThrottledDeviceConfirmView,
    ThrottledDeviceGrantStatusView,
    ThrottledDeviceUserCodeView,
)

app_name = "oauth2_provider"

_OURS = {
    "authorize": PlatformAuthorizationView,
    "device": ThrottledDeviceUserCodeView,
    "device-confirm": ThrottledDeviceConfirmView,
    "device-grant-status": ThrottledDeviceGrantStatusView,
}

urlpatterns = [
    *dot_urls.metadata_urlpatterns,
    *[
        path(str(p.pattern), _OURS[p.name].as_view(), name=p.name) if p.name in _OURS else p
        for p in dot_urls.base_urlpatterns
    ],
    path(
        "authorized_tokens/",
        views.AuthorizedTokensListView.as_view(),
        name="authorized-token-list",
    ),
    path(
        "authorized_tokens/<slug:pk>/delete/",
        views.AuthorizedTokenDeleteView.as_view(),
        name="authorized-token-delete",
    ),
    *dot_urls.oidc_urlpatterns,
]
