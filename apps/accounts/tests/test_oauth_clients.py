"""Who may register OAuth2 clients, what the consent page tells the user, which flows the
authorization endpoint serves, and the device grant's throttle (issue 25, items 2 and 3).

The client side is Authlib's ``OAuth2Session`` (a standard client library, not our code)
building the authorization requests a real client would send."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.integrations.requests_client import OAuth2Session
from django.core.cache import cache
from django.test import Client
from oauth2_provider.models import get_application_model

pytestmark = pytest.mark.django_db

Application = get_application_model()
REDIRECT = "https://evil.example.test/callback"


def _app(owner: Any, grant: str = "authorization-code", **fields: Any) -> Any:
    return Application.objects.create(
        name="VR Platform (official)",
        user=owner,
        client_type="confidential",
        authorization_grant_type=grant,
        client_secret="s3cret-client-secret-value",
        redirect_uris=REDIRECT,
        algorithm=Application.RS256_ALGORITHM,
        **fields,
    )


def _authorization_url(app: Any, response_type: str) -> str:
    session = OAuth2Session(
        client_id=app.client_id,
        redirect_uri=REDIRECT,
        scope="openid profile operations",
        code_challenge_method="S256",
    )
    url, _ = session.create_authorization_url(
        "http://testserver/o/authorize/",
        response_type=response_type,
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(8),
    )
    return url


@pytest.mark.parametrize(
    "path",
    [
        "/o/applications/",
        "/o/applications/register/",
        "/o/register/",  # dynamic client registration
    ],
)
def test_participants_cannot_register_oauth_clients(make_user: Any, path: str) -> None:
    client = Client()
    client.force_login(make_user(username="mallory"))
    assert client.get(path).status_code == 404
    response = client.post(
        path,
        {
            "name": "VR Platform (official)",
            "client_type": "confidential",
            "authorization_grant_type": "authorization-code",
            "redirect_uris": REDIRECT,
            "algorithm": "",
        },
    )
    assert response.status_code in (403, 404, 405)
    assert not Application.objects.exists()


def test_admins_register_clients_in_the_admin(make_user: Any) -> None:
    admin = Client()
    admin.force_login(make_user("admin", username="root"))
    assert admin.get("/admin/oauth2_provider/application/add/").status_code == 200
    # A user keeps the page that lists the clients they authorized, to withdraw one.
    user = Client()
    user.force_login(make_user(username="pia"))
    assert user.get("/o/authorized_tokens/").status_code == 200


def test_consent_page_names_the_clients_owner_and_redirect_host(make_user: Any) -> None:
    app = _app(make_user(username="mallory"))
    admin = Client()
    admin.force_login(make_user("admin", username="root"))
    page = admin.get(_authorization_url(app, "code"))
    assert page.status_code == 200, page.content[:300]
    text = page.content.decode()
    assert '<dd id="client-owner">mallory</dd>' in text
    assert "<strong>evil.example.test</strong>" in text


@pytest.mark.parametrize(
    ("grant", "response_type"),
    [
        ("openid-hybrid", "code token"),
        ("openid-hybrid", "code id_token"),
        ("openid-hybrid", "code id_token token"),
        ("implicit", "token"),
        ("implicit", "id_token token"),
    ],
)
def test_only_the_code_flow_is_served(make_user: Any, grant: str, response_type: str) -> None:
    """Every other response type puts tokens in the redirect's fragment; even a client an
    admin registered with such a grant (and trusted to skip consent) gets none."""
    app = _app(make_user(username="owner"), grant, skip_authorization=True)
    admin = Client()
    admin.force_login(make_user("admin", username="root"))
    response = admin.get(_authorization_url(app, response_type))
    location = response.get("Location", "")
    body = response.content.decode(errors="replace")
    assert "access_token" not in location
    assert "id_token=" not in location
    assert "access_token" not in body
    if location:
        answer = parse_qs(urlsplit(location).query) or parse_qs(urlsplit(location).fragment)
        assert answer.get("error") in (["unauthorized_client"], ["unsupported_response_type"])
    else:
        assert response.status_code in (200, 400)
        assert "Error" in body


def test_the_code_flow_still_works(make_user: Any) -> None:
    app = _app(make_user(username="owner"), skip_authorization=True)
    admin = Client()
    admin.force_login(make_user(username="pia"))
    response = admin.get(_authorization_url(app, "code"))
    assert response.status_code == 302
    assert "code" in parse_qs(urlsplit(response["Location"]).query)


def test_device_user_codes_are_throttled(make_user: Any, settings: Any) -> None:
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "device_user_code": "3/min",
        },
    }
    client = Client()
    client.force_login(make_user(username="guesser"))
    assert client.get("/o/device/").status_code == 200  # the form itself is free
    tries = [client.post("/o/device/", {"user_code": f"WRONG{i}"}).status_code for i in range(5)]
    assert tries[:3] == [200, 200, 200]  # the form again, "incorrect code"
    assert tries[3:] == [429, 429]
    refused = client.post("/o/device/", {"user_code": "WRONG9"})
    assert int(refused["Retry-After"]) > 0
    confirm = client.get("/o/device-confirm/some-client/WRONG9")
    assert confirm.status_code == 429  # the code in the URL counts too
    # Another address and user are not held up by this one.
    other = Client(REMOTE_ADDR="10.1.2.3")
    other.force_login(make_user(username="someone"))
    assert other.post("/o/device/", {"user_code": "WRONG0"}).status_code == 200
