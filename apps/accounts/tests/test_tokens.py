import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from apps.accounts.models import RefreshToken
from apps.accounts.tokens import access_token_encode

pytestmark = pytest.mark.django_db

PROFILE = "/api/athena/profile"
REFRESH = "/api/athena/wisdom_refresh"
LOGOUT = "/api/athena/logout"


def _auth(client, token):
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_profile_shows_roles_and_effective_permissions(make_user, bearer_client):
    user = make_user("operator", username="olga")
    body = bearer_client(user).get(PROFILE).json()
    assert body["username"] == "olga"
    assert body["roles"] == ["operator"]
    assert body["is_staff"] is True
    assert "accounts.view_user" in body["permissions"]
    assert "accounts.change_user" not in body["permissions"]


def test_profile_without_token_is_401(api_client):
    response = api_client.get(PROFILE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401_token_expired(api_client, make_user):
    user = make_user()
    token, _ = access_token_encode(
        user_id=user.pk, roles=[], now=datetime.now(UTC) - timedelta(hours=1)
    )
    response = _auth(api_client, token).get(PROFILE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


def test_tampered_token_is_401(api_client, make_user):
    user = make_user("participant")
    token, _ = access_token_encode(user_id=user.pk, roles=["participant"])
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["roles"] = ["admin"]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    response = _auth(api_client, f"{header}.{forged}.{signature}").get(PROFILE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def _valid_claims(user) -> dict:
    """Claims that would be accepted if signed with JWT_SECRET."""
    now = int(datetime.now(UTC).timestamp())
    return {
        "sub": str(user.pk),
        "iat": now,
        "exp": now + 600,
        "jti": "x" * 32,
        "iss": "vrplatform",
        "typ": "access",
    }


def test_alg_none_token_is_401(api_client, make_user):
    unsigned = jwt.encode(_valid_claims(make_user()), key=None, algorithm="none")
    response = _auth(api_client, unsigned).get(PROFILE)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_invalid"


def test_token_signed_with_other_secret_is_401(api_client, make_user):
    other_secret = "another-secret-of-sufficient-length-123"
    token = jwt.encode(_valid_claims(make_user()), other_secret, algorithm="HS256")
    assert _auth(api_client, token).get(PROFILE).status_code == 401


def test_refresh_rotates_and_old_refresh_is_spent(api_client, make_user, bearer_client):
    user = make_user()
    first = bearer_client(user).token_pair
    rotated = api_client.post(REFRESH, {"refresh": first.refresh}, format="json")
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh"] != first.refresh
    assert second["access"] != first.access
    assert _auth(api_client, second["access"]).get(PROFILE).status_code == 200
    tokens = RefreshToken.objects.filter(user=user).order_by("created_at")
    assert tokens.count() == 2
    assert tokens[0].used_at is not None
    assert tokens[0].family == tokens[1].family


def test_reused_refresh_token_revokes_whole_family(api_client, make_user, bearer_client):
    user = make_user()
    first = bearer_client(user).token_pair
    second = api_client.post(REFRESH, {"refresh": first.refresh}, format="json").json()
    replay = api_client.post(REFRESH, {"refresh": first.refresh}, format="json")
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    # The legitimate holder's newer refresh token is revoked too...
    after = api_client.post(REFRESH, {"refresh": second["refresh"]}, format="json")
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "token_revoked"
    # ...and so are the family's live access tokens.
    assert (
        _auth(api_client, second["access"]).get(PROFILE).json()["error"]["code"] == "token_revoked"
    )
    assert RefreshToken.objects.filter(user=user, revoked_at__isnull=True).count() == 0


def test_unknown_or_expired_refresh_token(api_client, make_user, bearer_client):
    assert (
        api_client.post(REFRESH, {"refresh": "nope"}, format="json").json()["error"]["code"]
        == "token_invalid"
    )
    user = make_user()
    pair = bearer_client(user).token_pair
    RefreshToken.objects.filter(user=user).update(
        expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    expired = api_client.post(REFRESH, {"refresh": pair.refresh}, format="json")
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "token_expired"


def test_logout_revokes_refresh_and_denies_access_token(api_client, make_user, bearer_client):
    user = make_user()
    client = bearer_client(user)
    pair = client.token_pair
    assert client.post(LOGOUT, {"refresh": pair.refresh}, format="json").status_code == 204
    denied = client.get(PROFILE)
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "token_revoked"
    refresh = api_client.post(REFRESH, {"refresh": pair.refresh}, format="json")
    assert refresh.json()["error"]["code"] == "token_revoked"


def test_logout_with_someone_elses_refresh_token_is_rejected(make_user, bearer_client):
    victim = bearer_client(make_user())
    attacker = bearer_client(make_user())
    response = attacker.post(LOGOUT, {"refresh": victim.token_pair.refresh}, format="json")
    assert response.status_code == 400
    assert victim.get(PROFILE).status_code == 200


def test_jwt_secret_is_what_signs(settings, make_user, bearer_client):
    user = make_user()
    client = bearer_client(user)
    settings.JWT_SECRET = "rotated-secret-0123456789-0123456789-abc"
    assert client.get(PROFILE).status_code == 401
