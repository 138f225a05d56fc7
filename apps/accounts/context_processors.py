"""Template context for the sign-in pages."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def account_settings(request: HttpRequest) -> dict[str, Any]:
    return {"signup_open": bool(getattr(settings, "ACCOUNT_SIGNUP_OPEN", False))}
