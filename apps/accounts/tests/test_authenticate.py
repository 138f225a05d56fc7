import jwt
import pytest
from django.conf import settings

from apps.accounts.tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/athena/authenticate"


def test_authenticate_returns_jwt_pair_and_profile(api_client, make_user):
    user = make_user("creator", username="alice")
    response = api_client.post(
        URL, {"username": "alice", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["user"]["username"] == "alice"
    assert body["user"]["roles"] == ["creator"]
    claims = jwt.decode(
        body["access"], settings.JWT_SECRET, algorithms=["HS256"], issuer="vrplatform"
    )
    assert claims["sub"] == str(user.pk)
    assert claims["exp"] - claims["iat"] == 900
    assert claims["roles"] == ["creator"]
    assert len(claims["jti"]) == 32
    assert body["refresh"]
    assert "." not in body["refresh"]  # opaque, not a JWT


def test_wrong_password_is_401_invalid_credentials(api_client, make_user):
    make_user(username="bob")
    response = api_client.post(URL, {"username": "bob", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    unknown = api_client.post(URL, {"username": "ghost", "password": "nope"}, format="json")
    assert unknown.json()["error"]["code"] == "invalid_credentials"  # no user enumeration


def test_inactive_user_cannot_sign_in(api_client, make_user):
    make_user(username="carol", is_active=False)
    response = api_client.post(
        URL, {"username": "carol", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 401


def test_malformed_json_is_400_with_code(api_client):
    response = api_client.generic(
        "POST", URL, '{"username": "x", ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_missing_fields_are_400_with_field_detail(api_client):
    response = api_client.post(URL, {"username": "x"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "password" in error["detail"]


def test_lockout_after_repeated_failures_then_429_with_retry_after(api_client, make_user, settings):
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    make_user(username="dave")
    for _ in range(3):
        assert (
            api_client.post(URL, {"username": "dave", "password": "bad"}, format="json").status_code
            == 401
        )
    locked = api_client.post(URL, {"username": "dave", "password": DEFAULT_PASSWORD}, format="json")
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "login_locked"
    assert 1 <= int(locked["Retry-After"]) <= settings.LOGIN_LOCKOUT_WINDOW_SECONDS + 1
    # The lockout is per (username, IP): another IP still signs in.
    other_ip = api_client.post(
        URL,
        {"username": "dave", "password": DEFAULT_PASSWORD},
        format="json",
        REMOTE_ADDR="10.9.8.7",
    )
    assert other_ip.status_code == 200


def test_successful_login_resets_failure_count(api_client, make_user, settings):
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    make_user(username="erin")
    for _ in range(2):
        api_client.post(URL, {"username": "erin", "password": "bad"}, format="json")
    assert (
        api_client.post(
            URL, {"username": "erin", "password": DEFAULT_PASSWORD}, format="json"
        ).status_code
        == 200
    )
    for _ in range(2):
        api_client.post(URL, {"username": "erin", "password": "bad"}, format="json")
    assert (
        api_client.post(
            URL, {"username": "erin", "password": DEFAULT_PASSWORD}, format="json"
        ).status_code
        == 200
    )


def test_authenticate_endpoint_is_throttled(api_client, make_user, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"authenticate": "2/min"})
    make_user(username="frank")
    for _ in range(2):
        api_client.post(URL, {"username": "frank", "password": DEFAULT_PASSWORD}, format="json")
    throttled = api_client.post(
        URL, {"username": "frank", "password": DEFAULT_PASSWORD}, format="json"
    )
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "rate_limited"
    assert int(throttled["Retry-After"]) >= 1
