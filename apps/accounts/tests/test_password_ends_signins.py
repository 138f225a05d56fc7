"""A password reset or change ends every earlier sign-in (issue 25, item 5): the old platform
tokens and OAuth2 tokens stop working, whichever door changed the password (allauth's change
and reset pages, the admin's password form)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_issue
from apps.accounts.tests.factories import DEFAULT_PASSWORD, AccessTokenFactory

pytestmark = pytest.mark.django_db

NEW = "a-brand-new-password-31"


class OldSignins:
    """A platform sign-in and an OAuth2 token of ``user``, made before the change."""

    def __init__(self, user: Any) -> None:
        self.pair = token_pair_issue(user=user)
        self.oauth = AccessTokenFactory(user=user, scope="profile").token

    def assert_alive(self, alive: bool) -> None:
        expected = 200 if alive else 401
        for token in (self.pair.access, self.oauth):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            assert client.get("/api/athena/profile").status_code == expected
        refreshed = APIClient().post(
            "/api/athena/wisdom_refresh", {"refresh": self.pair.refresh}, format="json"
        )
        assert refreshed.status_code == (200 if alive else 401)


def test_password_change_page_ends_earlier_signins(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user(username="changer")
    old = OldSignins(user)
    client = Client()
    client.post("/accounts/login/", {"login": "changer", "password": DEFAULT_PASSWORD})
    with django_capture_on_commit_callbacks(execute=True):
        ok = client.post(
            "/accounts/password/change/",
            {"oldpassword": DEFAULT_PASSWORD, "password1": NEW, "password2": NEW},
        )
    assert ok.status_code == 302
    old.assert_alive(False)


def test_password_reset_ends_earlier_signins(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user(username="forgetful", email="forgetful@example.test")
    old = OldSignins(user)
    client = Client()
    client.post("/accounts/password/reset/", {"email": "forgetful@example.test"})
    link = re.search(r"http://[^\s]+/accounts/password/reset/key/[^\s]+", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    form = client.get(link.group(0).split("testserver", 1)[1], follow=True)
    action = form.redirect_chain[-1][0]
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(action, {"password1": NEW, "password2": NEW})
    assert done.status_code == 302
    old.assert_alive(False)


def test_admin_password_form_ends_earlier_signins(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    user = make_user(username="victim")
    other = OldSignins(make_user(username="bystander"))
    old = OldSignins(user)
    admin = Client()
    admin.force_login(make_user("admin", username="root"))
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(
            f"/admin/accounts/user/{user.pk}/password/",
            {"password1": NEW, "password2": NEW, "usable_password": "true"},
        )
    assert done.status_code == 302, done.content[:500]
    old.assert_alive(False)
    other.assert_alive(True)  # only that user's sign-ins
