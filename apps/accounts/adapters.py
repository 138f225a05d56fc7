"""django-allauth adapters: the platform's rules for the sign-in pages and external providers.

- Sign-in through the pages counts failures in the same per-(account, client address)
  lockout as ``POST /api/athena/authenticate``, so neither door is a way around the other.
- The client address is ``REMOTE_ADDR``, which ``TrustedProxyMiddleware`` has already resolved.
- Self sign-up is open only when operators say so (``ACCOUNT_SIGNUP_OPEN``) and e-mail
  verification is mandatory (else the sign-up page would tell who has an account, and an
  account could claim an address it does not own); external providers have their own switch
  (``SOCIAL_SIGNUP_OPEN``). Every new account is a participant.
- An external account links to an existing one only by an e-mail address the provider says is
  verified, and never to an address a self sign-up claimed without confirming it (that would
  let someone register a victim's address first and inherit their later SSO sign-in).
  Addresses are compared exactly after ``email_match_key`` (ASCII only, ASCII case folded),
  never by Unicode case folding or the database's case-insensitive match alone.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest

from apps.accounts.lockout import login_failure_record, login_failures_clear, login_lockout_check
from apps.accounts.models import User
from apps.accounts.roles import PARTICIPANT
from apps.accounts.services import user_set_roles
from apps.core.errors import RateLimited


def self_signup_open() -> bool:
    return bool(getattr(settings, "ACCOUNT_SIGNUP_OPEN", False)) and (
        getattr(settings, "ACCOUNT_EMAIL_VERIFICATION", "") == "mandatory"
    )


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return self_signup_open()

    def get_client_ip(self, request: HttpRequest) -> str:
        return str(request.META.get("REMOTE_ADDR") or "unknown")

    def authenticate(self, request: HttpRequest, **credentials: Any) -> Any:
        login = str(credentials.get("username") or credentials.get("email") or "")
        client_ip = self.get_client_ip(request)
        try:
            login_lockout_check(username=login, client_ip=client_ip)
        except RateLimited as exc:
            raise self.validation_error("too_many_login_attempts") from exc
        user = super().authenticate(request, **credentials)
        if user is None:
            login_failure_record(username=login, client_ip=client_ip)
        else:
            login_failures_clear(username=login, client_ip=client_ip)
        return user

    @transaction.atomic
    def save_user(self, request: HttpRequest, user: User, form: Any, commit: bool = True) -> User:
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            user_set_roles(user=user, roles=[PARTICIPANT])
        return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        return bool(getattr(settings, "SOCIAL_SIGNUP_OPEN", True))

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        if sociallogin.is_existing:
            return
        user = linkable_user(sociallogin.email_addresses)
        if user is not None:
            sociallogin.connect(request, user)

    @transaction.atomic
    def save_user(self, request: HttpRequest, sociallogin: Any, form: Any = None) -> User:
        user = super().save_user(request, sociallogin, form)
        user_set_roles(user=user, roles=[PARTICIPANT])
        return user


def email_match_key(address: str) -> str | None:
    """The form two addresses are compared in to link accounts: surrounding blanks removed,
    ASCII letters lower-cased, nothing else changed. ``None`` (never linkable) for an address
    with any non-ASCII character: Unicode case folding and compatibility forms map look-alikes
    onto plain letters (KELVIN SIGN U+212A lower-cases to "k", so "\u212aate@corp.test" would
    become kate's address), and no rule short of refusing them is safe."""
    address = address.strip()
    if not address or not address.isascii():
        return None
    return address.lower()  # ASCII only: lower() touches A-Z and nothing else


def linkable_user(addresses: list[Any]) -> User | None:
    """The one active local account whose e-mail is among the provider's *verified*
    addresses, unless that address is an unconfirmed self sign-up claim. Addresses match
    only when their ``email_match_key`` is equal: the database's case-insensitive lookup
    narrows the candidates, the exact comparison of the keys decides."""
    verified = {
        key for a in addresses if a.verified and a.email and (key := email_match_key(a.email))
    }
    for email in sorted(verified):
        candidates = User.objects.filter(email__iexact=email, is_active=True)[:10]
        users = [u for u in candidates if email_match_key(u.email) == email]
        if len(users) != 1:
            continue  # none, or ambiguous: never guess which account to hand over
        user = users[0]
        unconfirmed = any(
            email_match_key(claim) == email
            for claim in EmailAddress.objects.filter(user=user, verified=False).values_list(
                "email", flat=True
            )
        )
        if not unconfirmed:
            return user
    return None
