"""A third-party app signs in a participant (not staff) through the real sign-in and consent
pages of a running platform, as it would in the field: the client side is Authlib's
``OAuth2Session`` (a standard OAuth client library, not our code), the user's side an HTTP
session that reads and submits the pages' forms like a browser without JavaScript.

Authorization code + PKCE: sign-in page, consent page, tokens, the API, a refresh, and the
id_token verified against the published JWKS. Then the device grant a headset uses."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from apps.core.testing_browser import PASSWORD, Server, orm

pytestmark = [pytest.mark.django_db(transaction=True)]

REDIRECT = "http://127.0.0.1:9/callback"  # never fetched: the test reads the redirect


class Forms(HTMLParser):
    """Every <form> of a page: action, method and the values a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "id": a.get("id", ""), "fields": {}})
        elif tag == "input" and self.forms and a.get("name") and a.get("type") != "submit":
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def form_of(response: requests.Response, index: int = -1) -> tuple[str, dict[str, str]]:
    parser = Forms()
    parser.feed(response.text)
    assert parser.forms, f"no form on {response.url}:\n{response.text[:500]}"
    form = parser.forms[index]
    return urljoin(response.url, form["action"] or response.url), dict(form["fields"])


def sign_in_through_the_page(browser: requests.Session, page: requests.Response) -> Any:
    """``page`` is the sign-in page the platform sent the user to."""
    assert urlsplit(page.url).path == "/accounts/login/", page.url
    action, fields = form_of(page)
    fields.update({"login": "pia", "password": PASSWORD})
    return browser.post(action, data=fields, headers={"Referer": page.url}, allow_redirects=True)


@pytest.fixture
def participant(live_platform: Server, user_factory: Any) -> Any:
    user = user_factory("pia")  # a participant: no staff flag, no admin access
    assert not user.is_staff
    return user


def _application(**fields: Any) -> Any:
    from oauth2_provider.models import get_application_model

    return orm(get_application_model().objects.create, **fields)


def test_authorization_code_with_pkce_as_a_participant(live_platform: Server, participant: Any):
    url = live_platform.url
    secret = "third-party-client-secret-0123456789"
    app = _application(
        name="Third-party VR app",
        client_type="confidential",
        authorization_grant_type="authorization-code",
        client_secret=secret,
        redirect_uris=REDIRECT,
        algorithm="RS256",
    )
    discovery = requests.get(f"{url}/o/.well-known/openid-configuration", timeout=10).json()
    client = OAuth2Session(
        client_id=app.client_id,
        client_secret=secret,
        scope="openid profile sessions",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier = "v" * 20 + "-pkce-verifier-" + "x" * 30
    auth_url, state = client.create_authorization_url(
        discovery["authorization_endpoint"], code_verifier=verifier, nonce="n-0S6_WzA2Mj"
    )

    browser = requests.Session()
    login_page = browser.get(auth_url, timeout=10)  # not signed in: the sign-in page
    consent = sign_in_through_the_page(browser, login_page)
    assert urlsplit(consent.url).path == "/o/authorize/", consent.url
    assert "Third-party VR app" in consent.text
    action, fields = form_of(consent)
    fields["allow"] = "Authorize"
    answer = browser.post(action, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text[:300]
    callback = answer.headers["Location"]
    assert callback.startswith(REDIRECT)
    assert parse_qs(urlsplit(callback).query)["state"] == [state]

    token = client.fetch_token(
        discovery["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == {"openid", "profile", "sessions"}

    profile = client.get(f"{url}/api/athena/profile", timeout=10)
    assert profile.status_code == 200, profile.text
    assert profile.json()["username"] == "pia"
    assert profile.json()["roles"] == ["participant"]
    sessions = client.get(f"{url}/api/hermes/sessions", timeout=10)
    assert sessions.status_code == 200
    # The scopes the user granted are all the token can do: no scenes, no operations.
    assert client.get(f"{url}/api/daedalus/scenes", timeout=10).status_code == 403

    refreshed = client.refresh_token(discovery["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert client.get(f"{url}/api/athena/profile", timeout=10).status_code == 200

    jwks = KeySet.import_key_set(requests.get(discovery["jwks_uri"], timeout=10).json())
    id_token = jose_jwt.decode(token["id_token"], jwks, algorithms=["RS256"])
    claims = id_token.claims
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        aud={"essential": True, "value": app.client_id},
        nonce={"essential": True, "value": "n-0S6_WzA2Mj"},
    ).validate(claims)
    assert claims["sub"] == str(participant.pk)
    assert claims["preferred_username"] == "pia"
    assert claims["exp"] > time.time()


def test_device_grant_as_a_participant(live_platform: Server, participant: Any):
    url = live_platform.url
    app = _application(
        name="Quest app",
        client_type="public",
        authorization_grant_type="urn:ietf:params:oauth:grant-type:device_code",
    )
    discovery = requests.get(f"{url}/o/.well-known/openid-configuration", timeout=10).json()
    headset = OAuth2Session(client_id=app.client_id, scope="profile sessions")
    started = headset.post(
        f"{url}/o/device-authorization/",
        data={"client_id": app.client_id, "scope": "profile sessions"},
        timeout=10,
        withhold_token=True,  # no token yet: this request asks for the codes
    )
    assert started.status_code == 200, started.text
    grant = started.json()

    # On a phone or laptop: the verification URL, the sign-in page, the code, the consent.
    browser = requests.Session()
    code_page = sign_in_through_the_page(browser, browser.get(grant["verification_uri"]))
    assert urlsplit(code_page.url).path == "/o/device/", code_page.url
    action, fields = form_of(code_page)
    fields["user_code"] = grant["user_code"]
    consent = browser.post(action, data=fields, timeout=10)
    assert "Quest app" in consent.text
    action, fields = form_of(consent)
    fields["action"] = "accept"
    done = browser.post(action, data=fields, timeout=10)
    assert done.status_code == 200
    assert "Device" in done.text

    token = headset.fetch_token(
        discovery["token_endpoint"],
        grant_type="urn:ietf:params:oauth:grant-type:device_code",
        device_code=grant["device_code"],
        client_id=app.client_id,
    )
    profile = headset.get(f"{url}/api/athena/profile", timeout=10)
    assert profile.status_code == 200, profile.text
    assert profile.json()["username"] == "pia"
    assert token["refresh_token"]
