"""``python -m vrplatform.devservices``: the command gets PostgreSQL and Redis URLs."""

import os
import sys
from pathlib import Path

import pytest
import redis

from vrplatform import devservices
from vrplatform.oidc_key import load_or_create_dev_key


def test_given_urls_are_passed_through_and_the_exit_status_returned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://example/db")
    monkeypatch.setenv("REDIS_URL", "redis://example:1/0")
    check = (
        "import os, sys; "
        "sys.exit(0 if os.environ['DATABASE_URL'] == 'postgresql://example/db' "
        "and os.environ['REDIS_URL'] == 'redis://example:1/0' else 3)"
    )
    assert devservices.main(["--", sys.executable, "-c", check]) == 0
    assert devservices.main(["--", sys.executable, "-c", "raise SystemExit(7)"]) == 7


def test_no_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        devservices.main([])
    assert exit_.value.code == 2


def test_embedded_redis_serves_and_stops(tmp_path: Path) -> None:
    with devservices.embedded_redis(tmp_path / "redis") as url:
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()


def test_dev_oidc_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "oidc.pem"
    pem = load_or_create_dev_key(path)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_dev_key(path) == pem
