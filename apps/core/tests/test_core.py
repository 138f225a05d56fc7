import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

pytestmark = pytest.mark.django_db

ROOT = Path(django_settings.BASE_DIR)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_real_database_cache_and_channel_layer(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "channel_layer": "ok"}


def test_readyz_reports_which_dependency_failed(client, settings):
    from channels.layers import channel_layers

    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": dead},
    }
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [dead]}}
    }
    # The settings fixture rebuilds the cache handler; channel layers are cached by Channels.
    channel_layers.backends.clear()
    try:
        response = client.get("/readyz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert sorted(body["failed"]) == ["cache", "channel_layer"]


def test_unknown_route_is_json_404(client):
    response = client.get("/api/does-not-exist")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_openapi_schema_documents_every_endpoint_and_errors(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for expected in (
        "/api/athena/authenticate",
        "/api/athena/wisdom_refresh",
        "/api/athena/profile",
        "/api/athena/logout",
    ):
        assert expected in paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "400" in responses, (path, method)
            error_schema = responses["400"]["content"]["application/json"]["schema"]
            assert error_schema["$ref"].endswith("/Error"), (path, method)
    assert client.get("/api/docs/").status_code == 200


def _manage(*args: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_overrides}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PROD_ENV = {
    "DJANGO_SETTINGS_MODULE": "vrplatform.settings.production",
    "DJANGO_SECRET_KEY": "prod-" + "k" * 60 + "-Zq8#x!",
    "JWT_SECRET": "prod-jwt-" + "s" * 40,
    "ALLOWED_HOSTS": "vr.example.com",
    "OIDC_RSA_PRIVATE_KEY": django_settings.OIDC_RSA_PRIVATE_KEY,
}


def test_production_check_deploy_is_clean():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PROD_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "JWT_SECRET"])
def test_production_refuses_to_start_without_secrets(missing):
    result = _manage("check", env_overrides={**PROD_ENV, missing: ""})
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr


def test_cache_outage_is_503_with_a_code_not_500(client, settings, make_user):
    """Sign-in counts failures in the cache (Redis): while it is down, callers get a retryable
    503 naming the cause, never a 500."""
    make_user(username="while-redis-is-down")
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": dead},
    }
    response = client.post(
        "/api/athena/authenticate",
        {"username": "while-redis-is-down", "password": "x"},
        content_type="application/json",
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cache_unavailable"
    assert response["Retry-After"] == "5"
