"""Findings of the security test (issue 14) that live in request handling: forwarded headers,
deep JSON, errors Django answers before a view, the Content-Security-Policy, weak passwords."""

from __future__ import annotations

import pytest
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.tests.factories import DEFAULT_PASSWORD
from apps.core.middleware import client_address

pytestmark = pytest.mark.django_db

AUTH = "/api/athena/authenticate"


def _login(client, username: str, password: str, **extra):
    return client.post(AUTH, {"username": username, "password": password}, format="json", **extra)


# --- X-Forwarded-For -------------------------------------------------------------------------
def test_rotating_x_forwarded_for_does_not_reset_the_lockout(api_client, make_user, settings):
    """Reached directly (no trusted proxy), the header is the client's word and is ignored:
    the lockout still counts every try from the one real address."""
    settings.LOGIN_LOCKOUT_THRESHOLD = 3
    make_user(username="mallory-target")
    for i in range(3):
        bad = _login(api_client, "mallory-target", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        assert bad.status_code == 401
    right = _login(
        api_client, "mallory-target", DEFAULT_PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7"
    )
    assert right.status_code == 429
    assert right.json()["error"]["code"] == "login_locked"


def test_rotating_x_forwarded_for_does_not_escape_the_authenticate_throttle(
    api_client, make_user, monkeypatch
):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"authenticate": "3/min"})
    make_user(username="throttled")
    codes = [
        _login(api_client, "throttled", "x", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}").status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_a_trusted_proxy_names_the_client_and_spoofed_entries_are_ignored(
    api_client, make_user, settings
):
    """Behind the gateway (a trusted proxy) each client has its own lockout, keyed on the
    address the gateway appended, not on what the client wrote in front of it."""
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    settings.LOGIN_LOCKOUT_THRESHOLD = 2
    make_user(username="behind-gateway")
    via_gateway = {"REMOTE_ADDR": "10.1.2.3"}
    for spoof in ("1.1.1.1", "2.2.2.2"):
        xff = f"{spoof}, 198.51.100.20"
        bad = _login(api_client, "behind-gateway", "wrong", HTTP_X_FORWARDED_FOR=xff, **via_gateway)
        assert bad.status_code == 401
    locked = _login(
        api_client,
        "behind-gateway",
        DEFAULT_PASSWORD,
        HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.20",
        **via_gateway,
    )
    assert locked.status_code == 429
    other_client = _login(
        api_client,
        "behind-gateway",
        DEFAULT_PASSWORD,
        HTTP_X_FORWARDED_FOR="198.51.100.21",
        **via_gateway,
    )
    assert other_client.status_code == 200


@pytest.mark.parametrize(
    ("peer", "xff", "trusted", "client"),
    [
        ("192.0.2.1", "203.0.113.9", (), "192.0.2.1"),  # no proxy trusted: the peer
        ("192.0.2.1", "203.0.113.9", ("10.0.0.0/8",), "192.0.2.1"),  # peer not a proxy
        ("10.0.0.5", "203.0.113.9", ("10.0.0.0/8",), "203.0.113.9"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.9, 10.0.0.4", ("10.0.0.0/8",), "203.0.113.9"),
        ("10.0.0.5", "not-an-ip", ("10.0.0.0/8",), "10.0.0.5"),
        ("10.0.0.5", None, ("10.0.0.0/8",), "10.0.0.5"),
        ("::1", "2001:db8::7", ("::1/128",), "2001:db8::7"),
    ],
)
def test_client_address(peer, xff, trusted, client) -> None:
    assert client_address(peer, xff, trusted) == client


def test_metrics_network_check_ignores_a_forged_forwarded_header(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    forged = client.get("/metrics", REMOTE_ADDR="10.9.0.7", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert forged.status_code == 403


# --- JSON bodies -----------------------------------------------------------------------------
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_400_bad_json(api_client, opener):
    body = opener * 100_000
    response = api_client.generic("POST", AUTH, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


def test_invalid_json_is_400_bad_json(api_client):
    response = api_client.generic("POST", AUTH, "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_json"


# --- errors Django answers itself ------------------------------------------------------------
def test_body_over_the_memory_limit_is_a_json_413(api_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = '{"username": "' + "x" * 4096 + '", "password": "y"}'
    response = api_client.generic("POST", AUTH, body, content_type="application/json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "payload_too_large"


def test_form_over_the_memory_limit_on_an_oauth_endpoint_is_json(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = client.post(
        "/o/token/", "grant_type=" + "x" * 4096, content_type="application/x-www-form-urlencoded"
    )
    assert response["Content-Type"] == "application/json"
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["/api/athena/profile", "/api/does-not-exist", "/o/token/"])
def test_disallowed_host_on_api_paths_is_the_json_envelope(client, path):
    response = client.get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "disallowed_host"


def test_disallowed_host_on_a_page_stays_html(client):
    response = client.get("/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


# --- Content-Security-Policy ----------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/", "/login/", "/lobby/", "/admin/login/", "/api/docs/", "/healthz", "/o/device/"]
)
def test_every_response_has_a_content_security_policy(client, path):
    response = client.get(path)
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]


def test_api_docs_page_has_no_inline_script(client):
    html = client.get("/api/docs/").content.decode()
    assert "<script>" not in html  # the split view serves it from /api/docs/?script
    script = client.get("/api/docs/?script")
    assert script.status_code == 200
    assert b"SwaggerUIBundle" in script.content


# --- passwords -------------------------------------------------------------------------------
@pytest.mark.parametrize("weak", ["short", "password123", "12345678901", "weak-user-x"])
def test_user_create_runs_the_password_validators(weak):
    from apps.accounts.models import User
    from apps.accounts.services import user_create
    from apps.core.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        user_create(username="weak-user-x", password=weak)
    assert caught.value.code == "weak_password"
    assert caught.value.detail["password"]
    assert not User.objects.filter(username="weak-user-x").exists()
    assert user_create(username="weak-user-x", password="a-long-test-password-9").pk
