"""Template context for the sign-in pages."""

from typing import Any

from django.http import HttpRequest

from apps.accounts.adapters import self_signup_open


def account_settings(request: HttpRequest) -> dict[str, Any]:
    return {"signup_open": self_signup_open()}
