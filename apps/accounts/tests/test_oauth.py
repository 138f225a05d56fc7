"""OAuth2 and OpenID Connect through django-oauth-toolkit, against the platform's API."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from oauth2_provider.models import get_application_model

pytestmark = pytest.mark.django_db

Application = get_application_model()
PROFILE = "/api/athena/profile"
USERS = "/api/athena/users"
REDIRECT = "https://client.example.test/callback"
SECRET = "s3cret-client-secret-value"


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.fixture
def service_app(make_user):
    owner = make_user("operator", username="svc-owner")
    return Application.objects.create(
        name="telemetry",
        user=owner,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=SECRET,
    )


@pytest.fixture
def web_app(make_user):
    return Application.objects.create(
        name="headset-web",
        user=make_user("admin", username="app-owner"),
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        client_secret=SECRET,
        redirect_uris=REDIRECT,
        skip_authorization=True,
        algorithm=Application.RS256_ALGORITHM,
    )


def _client_credentials(client, app, scope: str) -> dict:
    client.credentials()  # APIClient's stored credentials would override the Basic header
    response = client.post(
        "/o/token/",
        {"grant_type": "client_credentials", "scope": scope},
        HTTP_AUTHORIZATION=_basic(app.client_id, SECRET),
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_client_credentials_token_works_as_bearer_and_lives_15_minutes(api_client, service_app):
    token = _client_credentials(api_client, service_app, "profile")
    assert token["expires_in"] == 900
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token['access_token']}")
    response = api_client.get(PROFILE)
    assert response.status_code == 200
    assert response.json()["username"] == "svc-owner"


def test_scopes_map_onto_role_permissions(api_client, service_app):
    narrow = _client_credentials(api_client, service_app, "sessions")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {narrow['access_token']}")
    assert api_client.get(USERS).status_code == 403  # the owner may, the token's scope may not
    wide = _client_credentials(api_client, service_app, "operations")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {wide['access_token']}")
    assert api_client.get(USERS).status_code == 200


def test_invalid_oauth_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    response = api_client.get(PROFILE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def _authorize(client, app, **extra) -> str:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile sessions",
        **extra,
    }
    response = client.get("/o/authorize/", params)
    assert response.status_code == 302, response.content
    return response["Location"]


def test_authorization_code_requires_pkce(client, web_app, make_user):
    client.force_login(make_user(username="pkce-less"))
    location = _authorize(client, web_app)
    query = parse_qs(urlsplit(location).query)
    assert "code" not in query
    assert query["error"] == ["invalid_request"]


def test_authorization_code_with_pkce_and_openid_connect(client, web_app, make_user):
    user = make_user("creator", username="olivia")
    client.force_login(user)
    _, challenge = _pkce()
    location = _authorize(client, web_app, code_challenge=challenge, code_challenge_method="S256")
    code = parse_qs(urlsplit(location).query)["code"][0]

    wrong = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": "x" * 50,
        },
        HTTP_AUTHORIZATION=_basic(web_app.client_id, SECRET),
    )
    assert wrong.status_code == 400  # a stolen code is useless without the verifier

    verifier2, challenge2 = _pkce()
    location = _authorize(client, web_app, code_challenge=challenge2, code_challenge_method="S256")
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier2,
        },
        HTTP_AUTHORIZATION=_basic(web_app.client_id, SECRET),
    ).json()
    assert token["expires_in"] == 900
    assert "id_token" in token
    assert "refresh_token" in token

    discovery = client.get("/o/.well-known/openid-configuration").json()
    assert discovery["issuer"].endswith("/o")
    assert "RS256" in discovery["id_token_signing_alg_values_supported"]
    jwks = client.get("/o/.well-known/jwks.json").json()
    key = jwt.PyJWK(jwks["keys"][0])
    id_claims = jwt.decode(
        token["id_token"], key.key, algorithms=["RS256"], audience=web_app.client_id
    )
    assert id_claims["sub"] == str(user.pk)

    userinfo = client.get(
        "/o/userinfo/", HTTP_AUTHORIZATION=f"Bearer {token['access_token']}"
    ).json()
    assert userinfo["preferred_username"] == "olivia"
    assert userinfo["roles"] == ["creator"]


def test_refresh_rotation_with_reuse_protection(client, web_app, service_app, make_user):
    client.force_login(make_user(username="rita"))
    verifier, challenge = _pkce()
    location = _authorize(client, web_app, code_challenge=challenge, code_challenge_method="S256")
    code = parse_qs(urlsplit(location).query)["code"][0]
    auth = _basic(web_app.client_id, SECRET)
    first = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        HTTP_AUTHORIZATION=auth,
    ).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = client.post("/o/token/", refresh, HTTP_AUTHORIZATION=auth).json()
    assert second["refresh_token"] != first["refresh_token"]

    introspect_auth = _basic(service_app.client_id, SECRET)
    active = client.post(
        "/o/introspect/", {"token": second["access_token"]}, HTTP_AUTHORIZATION=introspect_auth
    )
    assert active.json()["active"] is True
    assert active.json()["username"] == "rita"

    replay = client.post("/o/token/", refresh, HTTP_AUTHORIZATION=auth)
    assert replay.status_code == 400  # a spent refresh token...
    after = client.post(
        "/o/introspect/", {"token": second["access_token"]}, HTTP_AUTHORIZATION=introspect_auth
    )
    assert after.json()["active"] is False  # ...revokes the tokens issued from it


def test_revoked_oauth_token_is_rejected_by_the_api(api_client, service_app):
    token = _client_credentials(api_client, service_app, "profile")["access_token"]
    api_client.credentials()
    revoked = api_client.post(
        "/o/revoke_token/",
        {"token": token},
        HTTP_AUTHORIZATION=_basic(service_app.client_id, SECRET),
    )
    assert revoked.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api_client.get(PROFILE).status_code == 401


def test_device_authorization_grant_for_headsets(client, make_user):
    app = Application.objects.create(
        name="quest-native",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_DEVICE_CODE,
    )
    form = "application/x-www-form-urlencoded"
    started = client.post(
        "/o/device-authorization/",
        urlencode({"client_id": app.client_id}),
        content_type=form,
    )
    assert started.status_code == 200, started.content
    grant = started.json()
    assert grant["verification_uri"].endswith("/o/device/")
    device_code, user_code = grant["device_code"], grant["user_code"]

    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": device_code,
        "client_id": app.client_id,
    }
    pending = client.post("/o/token/", urlencode(poll), content_type=form)
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"

    user = make_user(username="headset-owner")
    client.force_login(user)
    entered = client.post("/o/device/", {"user_code": user_code})
    assert entered.status_code == 302
    consent = client.get(entered["Location"])
    assert 'Registered by <strong id="client-owner">the platform\'s administrators' in (
        consent.content.decode()
    )
    approved = client.post(entered["Location"], {"action": "accept"})
    assert approved.status_code == 302
    client.logout()

    token = client.post("/o/token/", urlencode(poll), content_type=form)
    assert token.status_code == 200, token.content
    profile = client.get(PROFILE, HTTP_AUTHORIZATION=f"Bearer {token.json()['access_token']}")
    assert profile.json()["username"] == "headset-owner"
