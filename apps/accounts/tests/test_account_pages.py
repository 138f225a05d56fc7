"""The sign-in pages for everyone (/accounts/, django-allauth with the platform's adapter):
sign-in and the shared lockout, sign-out, password change and reset by e-mail, the self
sign-up switch, and the web client's trade of a page session for its tokens."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from apps.accounts.models import User
from apps.accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def _page_login(client: Client, login: str, password: str):
    return client.post(LOGIN, {"login": login, "password": password})


def test_a_participant_signs_in_on_the_page_and_out_again(make_user):
    make_user(username="paula")
    client = Client()
    response = _page_login(client, "paula", DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == "/login/"  # the web client trades the session for tokens
    assert client.get("/accounts/password/change/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/password/change/").status_code == 302  # signed out


def test_page_and_api_share_one_lockout(make_user, settings, api_client):
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    make_user(username="locky")
    for _ in range(3):
        api_client.post(
            "/api/athena/authenticate", {"username": "locky", "password": "x"}, format="json"
        )
    page = _page_login(Client(), "locky", DEFAULT_PASSWORD)
    assert page.status_code == 200  # the form again, with the error: not signed in
    assert "_auth_user_id" not in page.wsgi_request.session
    assert b"Too many failed login attempts" in page.content


def test_self_sign_up_is_off_unless_operators_switch_it_on(settings):
    client = Client()
    closed = client.get("/accounts/signup/")
    assert b"Sign Up Closed" in closed.content
    assert b"/accounts/signup/" not in client.get(LOGIN).content  # no invitation to it
    assert b"signup-link" not in client.get("/login/").content
    settings.ACCOUNT_SIGNUP_OPEN = True
    settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"  # what base.py makes it when open
    assert b"/accounts/signup/" in client.get(LOGIN).content
    assert b"signup-link" in client.get("/login/").content
    weak = client.post(
        "/accounts/signup/",
        {"username": "newbie", "email": "n@example.test", "password1": "123", "password2": "123"},
    )
    assert weak.status_code == 200
    assert not User.objects.filter(username="newbie").exists()
    ok = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "email": "n@example.test",
            "password1": "a-long-test-password-9",
            "password2": "a-long-test-password-9",
        },
    )
    assert ok.status_code == 302, ok.content[:400]
    user = User.objects.get(username="newbie")
    assert [g.name for g in user.groups.all()] == ["participant"]
    assert not user.is_staff


def test_password_reset_by_e_mail_then_sign_in(make_user):
    make_user(username="forgetful", email="forgetful@example.test")
    client = Client()
    sent = client.post("/accounts/password/reset/", {"email": "forgetful@example.test"})
    assert sent.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"http://[^\s]+/accounts/password/reset/key/[^\s]+", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    path = link.group(0).split("testserver", 1)[1]
    form = client.get(path, follow=True)
    action = form.redirect_chain[-1][0] if form.redirect_chain else path
    new = "another-long-password-7"
    done = client.post(action, {"password1": new, "password2": new})
    assert done.status_code == 302
    assert _page_login(Client(), "forgetful", new).status_code == 302


def test_password_change_runs_the_validators(make_user):
    make_user(username="changer")
    client = Client()
    _page_login(client, "changer", DEFAULT_PASSWORD)
    weak = client.post(
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": "1234", "password2": "1234"},
    )
    assert weak.status_code == 200
    new = "a-changed-password-42"
    ok = client.post(
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": new, "password2": new},
    )
    assert ok.status_code == 302
    assert User.objects.get(username="changer").check_password(new)


def test_web_client_trades_a_page_session_for_tokens_with_csrf(make_user):
    make_user(username="bridge")
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")  # sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    assert client.post("/api/athena/session_token").status_code == 403  # not signed in
    login_page = client.get(LOGIN)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.content)
    signed_in = client.post(
        LOGIN,
        {
            "login": "bridge",
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": token.group(1).decode(),
        },
    )
    assert signed_in.status_code == 302, signed_in.content[:300]
    csrf = client.cookies["csrftoken"].value
    forged = client.post("/api/athena/session_token")  # another site: no CSRF header
    assert forged.status_code == 403
    pair = client.post("/api/athena/session_token", HTTP_X_CSRFTOKEN=csrf)
    assert pair.status_code == 200, pair.content
    body = pair.json()
    assert body["user"]["username"] == "bridge"
    # Signing out of the web client (the API) ends the page session too.
    out = client.post(
        "/api/athena/logout",
        {"refresh": body["refresh"]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {body['access']}",
    )
    assert out.status_code == 204
    again = client.post("/api/athena/session_token", HTTP_X_CSRFTOKEN=csrf)
    assert again.status_code == 403


def test_an_oidc_provider_configured_in_the_admin_appears_on_the_sign_in_page(make_user):
    from allauth.socialaccount.models import SocialApp

    admin = make_user("admin", username="root-admin")
    client = Client()
    client.force_login(admin)
    added = client.post(
        "/admin/socialaccount/socialapp/add/",
        {
            "provider": "openid_connect",
            "provider_id": "acme",
            "name": "Acme SSO",
            "client_id": "vr-platform",
            "secret": "s3cret",
            "key": "",
            "settings": '{"server_url": "https://sso.acme.example"}',
        },
    )
    assert added.status_code == 302, added.content[:500]
    assert SocialApp.objects.filter(provider_id="acme").exists()
    page = Client().get(LOGIN)
    assert b"Acme SSO" in page.content
    assert b"/accounts/oidc/acme/login/" in page.content


@pytest.mark.parametrize(
    ("provider", "authorize_url"),
    [
        ("github", "https://github.com/login/oauth/authorize"),
        ("google", "https://accounts.google.com/o/oauth2/v2/auth"),
    ],
)
def test_github_and_google_presets_from_the_environment(settings, provider, authorize_url):
    settings.SOCIALACCOUNT_PROVIDERS = {
        provider: {"APP": {"client_id": f"{provider}-client-id", "secret": "x"}}
    }
    client = Client()
    page = client.get(LOGIN)
    assert f"/accounts/{provider}/login/".encode() in page.content
    started = client.post(f"/accounts/{provider}/login/?process=login")
    assert started.status_code == 302
    location = started["Location"]
    assert location.startswith(authorize_url), location
    assert f"client_id={provider}-client-id" in location
    assert "state=" in location
