"""Suite-wide pytest fixtures (real PostgreSQL and Redis; see vrplatform/devservices.py)."""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# Browser end-to-end fixtures (live daphne, Chromium pages, streaming worker) for every app.
pytest_plugins = ["apps.core.testing_browser"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test databases, with every other connection to them ended before they
    are dropped: the servers the suite starts keep pooled connections (DB_POOL, settings/base.py)
    open until they exit, and one still open would block the DROP DATABASE."""
    yield
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.vendor != "postgresql":
            continue
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connection.close()
        connection.close_pool()


@pytest.fixture(scope="session")
def _redis_for_cleanup(request: pytest.FixtureRequest) -> Iterator[Any]:
    # Pure-Python packages (workers/*) can run with `-p no:django` and no services.
    if not request.config.pluginmanager.hasplugin("django") or not os.environ.get("REDIS_URL"):
        yield None
        return
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _isolated_cache(_redis_for_cleanup: Any) -> Iterator[None]:
    """Empty this run's cache keys around each test (lockout counters, denylist, throttles)
    without flushing the whole Redis database, which other runs or services may share.
    Uses its own client so a test that points the cache elsewhere cannot break cleanup."""
    if _redis_for_cleanup is None:
        yield
        return
    from django.conf import settings

    prefix = settings.CACHES["default"]["KEY_PREFIX"]

    def clear() -> None:
        keys = list(_redis_for_cleanup.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            _redis_for_cleanup.delete(*keys)

    clear()
    yield
    clear()


@pytest.fixture
def api_client() -> Any:
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def make_user(db: Any) -> Callable[..., Any]:
    from apps.accounts.tests.factories import UserFactory

    def make(*roles: str, **kwargs: Any) -> Any:
        return UserFactory(roles=list(roles) or ["participant"], **kwargs)

    return make


@pytest.fixture
def make_session(db: Any) -> Callable[..., Any]:
    """``make(owner, **fields)``: a session made through the service, as the API makes one."""
    from apps.sessions.services import session_create

    def make(owner: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("name", "room")
        return session_create(owner=owner, **kwargs)

    return make


@pytest.fixture
def bearer_client(db: Any) -> Callable[[Any], Any]:
    """An APIClient signed in as ``user`` with a platform JWT."""
    from rest_framework.test import APIClient

    from apps.accounts.services import token_pair_issue

    def client_for(user: Any) -> Any:
        client = APIClient()
        pair = token_pair_issue(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.access}")
        client.token_pair = pair
        return client

    return client_for
