"""The platform's versions of django-oauth-toolkit's pages.

- The consent page names who registered the client and where it sends the user back, so a
  client called "VR Platform (official)" cannot pass for the platform.
- The device grant's pages that take a user code (entering it, confirming it, its status) are
  throttled per user and per client address: a 40-bit code cannot be guessed at ~90/s, but
  nothing should let anyone try.
"""

from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from oauth2_provider.views import (
    AuthorizationView,
    DeviceConfirmView,
    DeviceGrantStatusView,
    DeviceUserCodeView,
)
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class PlatformAuthorizationView(AuthorizationView):
    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        application = context.get("application")
        owner = getattr(application, "user", None)
        context["client_owner"] = owner.get_username() if owner is not None else ""
        redirect_uri = str(context.get("redirect_uri") or "")
        context["redirect_host"] = urlsplit(redirect_uri).netloc if redirect_uri else ""
        return context


class _DeviceCodeThrottle(SimpleRateThrottle):
    """``DEFAULT_THROTTLE_RATES["device_user_code"]``, keyed by ``key_kind``."""

    scope = "device_user_code"
    key_kind = "ip"

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read now, not at import

    def get_cache_key(self, request: Any, view: Any) -> str:
        if self.key_kind == "user":
            user = getattr(request, "user", None)
            ident = f"user:{user.pk}" if user is not None and user.is_authenticated else ""
            if not ident:
                ident = f"ip:{self.get_ident(request)}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class _UserDeviceCodeThrottle(_DeviceCodeThrottle):
    key_kind = "user"


def _throttled(request: HttpRequest) -> HttpResponse | None:
    """None if this user-code attempt may go on, else a 429 with ``Retry-After``."""
    waits = []
    for throttle in (_DeviceCodeThrottle(), _UserDeviceCodeThrottle()):
        if not throttle.allow_request(request, None):
            waits.append(throttle.wait() or 60)
    if not waits:
        return None
    retry = int(max(waits)) + 1
    return HttpResponse(
        f"Too many device codes tried. Try again in {retry} seconds.",
        status=429,
        content_type="text/plain; charset=utf-8",
        headers={"Retry-After": str(retry)},
    )


class ThrottledDeviceUserCodeView(DeviceUserCodeView):
    """``/o/device/``: showing the form is free, each code entered counts."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:  # anonymous: the login redirect, nothing to guess
            refused = _throttled(request)
            if refused is not None:
                return refused
        return super().post(request, *args, **kwargs)


class ThrottledDeviceConfirmView(DeviceConfirmView):
    """The code is in the URL here: every request counts."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            refused = _throttled(request)
            if refused is not None:
                return refused
        return super().dispatch(request, *args, **kwargs)


class ThrottledDeviceGrantStatusView(DeviceGrantStatusView):
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            refused = _throttled(request)
            if refused is not None:
                return refused
        return super().dispatch(request, *args, **kwargs)
