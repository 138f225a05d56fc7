"""The login lockout counts per account, not per login string (issue 25, item 10), and per
client address across accounts; through the API and the sign-in page alike."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apps.accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/athena/authenticate"


def _login(api_client: Any, login: str, password: str, **extra: Any) -> int:
    body = {"username": login, "password": password}
    return api_client.post(URL, body, format="json", **extra).status_code


def test_every_name_of_an_account_shares_one_count(api_client, make_user, settings) -> None:
    settings.LOGIN_LOCKOUT_THRESHOLD = 4
    make_user(username="player", email="player@corp.test")
    names = ["player", "player@corp.test", "PLAYER", "Player@Corp.Test"]
    assert [_login(api_client, name, "wrong") for name in names] == [401, 401, 401, 401]
    # The account is locked for this client, under any of its names.
    for name in names:
        assert _login(api_client, name, DEFAULT_PASSWORD) == 429
    # The page (allauth, e-mail or username) counts in the same place.
    page = Client()
    response = page.post("/accounts/login/", {"login": "player", "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    # From elsewhere the account still signs in: nobody locks a victim out everywhere.
    assert _login(api_client, "player", DEFAULT_PASSWORD, REMOTE_ADDR="10.9.8.7") == 200


def test_one_client_spraying_many_accounts_is_locked(api_client, make_user, settings) -> None:
    settings.LOGIN_LOCKOUT_THRESHOLD = 5
    settings.LOGIN_LOCKOUT_CLIENT_THRESHOLD = 6
    make_user(username="mine")
    for i in range(6):  # one guess each at six accounts (some of them not even real)
        assert _login(api_client, f"someone{i}", "Password1") == 401
    # Its own right password does not help it, and does not reset the count.
    assert _login(api_client, "mine", DEFAULT_PASSWORD) == 429
    assert _login(api_client, "mine", DEFAULT_PASSWORD, REMOTE_ADDR="10.9.8.7") == 200
