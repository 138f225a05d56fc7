"""Open self sign-up verifies e-mail and does not tell who has an account (issue 25, item 11:
it answered "A user is already registered with this email address")."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.test import Client

from apps.accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-test-password-9"


def _sign_up(username: str, email: str) -> Any:
    return Client().post(
        "/accounts/signup/",
        {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD},
        follow=True,
    )


def test_a_taken_address_gets_the_same_answer_as_a_new_one(make_user: Any, settings: Any) -> None:
    settings.ACCOUNT_SIGNUP_OPEN = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    make_user(username="kate", email="kate@corp.test")
    taken = _sign_up("probe1", "kate@corp.test")
    fresh = _sign_up("probe2", "nobody@corp.test")
    assert taken.status_code == fresh.status_code == 200
    assert [r[0] for r in taken.redirect_chain] == [r[0] for r in fresh.redirect_chain]
    assert taken.redirect_chain, "both end on the 'check your e-mail' page"
    assert b"already registered" not in taken.content
    assert not User.objects.filter(username="probe1").exists()  # no second kate@corp.test
    # Each address's owner hears about it by e-mail, which only they can read.
    assert sorted(m.to[0] for m in mail.outbox) == ["kate@corp.test", "nobody@corp.test"]


def test_a_new_account_must_confirm_its_address_before_signing_in(settings: Any) -> None:
    settings.ACCOUNT_SIGNUP_OPEN = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    _sign_up("newbie", "newbie@corp.test")
    client = Client()
    response = client.post("/accounts/login/", {"login": "newbie", "password": PASSWORD})
    assert response.status_code == 302
    assert "/accounts/confirm-email/" in response["Location"]
    assert client.get("/api/athena/profile").status_code in (401, 403)


def test_open_sign_up_without_verification_stays_closed(settings: Any) -> None:
    settings.ACCOUNT_SIGNUP_OPEN = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    assert b"Sign Up Closed" in Client().get("/accounts/signup/").content
    assert [e.id for e in run_checks() if e.id.startswith("accounts.")] == ["accounts.E001"]


@pytest.mark.parametrize(("open_", "expected"), [("true", "mandatory"), ("false", "optional")])
def test_opening_sign_up_makes_verification_mandatory(open_: str, expected: str) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ACCOUNT_EMAIL_VERIFICATION"}
    env["ACCOUNT_SIGNUP_OPEN"] = open_
    code = "import vrplatform.settings.base as b; print(b.ACCOUNT_EMAIL_VERIFICATION)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == expected, out.stderr[-2000:]
