"""System checks for the accounts settings."""

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register()
def open_signup_verifies_email(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """Open self sign-up without mandatory e-mail verification lets anyone probe which
    addresses have accounts; the adapter keeps sign-up closed then, say why at start-up."""
    if not getattr(settings, "ACCOUNT_SIGNUP_OPEN", False):
        return []
    if getattr(settings, "ACCOUNT_EMAIL_VERIFICATION", "") == "mandatory":
        return []
    return [
        Error(
            "ACCOUNT_SIGNUP_OPEN needs ACCOUNT_EMAIL_VERIFICATION=mandatory; "
            "self sign-up stays closed until then.",
            id="accounts.E001",
        )
    ]
