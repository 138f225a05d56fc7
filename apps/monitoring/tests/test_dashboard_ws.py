"""The dashboard's live feed: staff with view_metrics get snapshots, others are refused."""

from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from apps.accounts.services import roles_sync
from vrplatform.asgi import application

PATH = "/ws/delphi/dashboard/"

# The consumer reads the session and the user from another thread (database_sync_to_async),
# which cannot see a test's uncommitted transaction; so these tests commit, and put the role
# groups back afterwards (a transactional test flushes the tables migrations filled).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _roles() -> Any:
    roles_sync()
    yield
    roles_sync()


def _cookie_for(user: Any) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return [
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()),
        (b"origin", b"http://localhost:8000"),
    ]


async def test_staff_get_snapshots(make_user: Any) -> None:
    operator = await database_sync_to_async(make_user)("operator")
    headers = await database_sync_to_async(_cookie_for)(operator)
    comm = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await comm.connect()
    try:
        assert connected
        first = await comm.receive_json_from(timeout=5)
        assert first["event"] == "delphi:dashboard"
        assert set(first["data"]) >= {"totals", "sessions", "workers", "streams"}
        assert first["data"]["totals"]["streams"] == 0
        second = await comm.receive_json_from(timeout=5)  # it keeps pushing
        assert second["data"]["at"] >= first["data"]["at"]
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("role", ["participant", None])
async def test_others_are_refused(make_user: Any, role: str | None) -> None:
    if role is None:
        headers = [(b"origin", b"http://localhost:8000")]
    else:
        user = await database_sync_to_async(make_user)(role)
        headers = await database_sync_to_async(_cookie_for)(user)
    comm = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await comm.connect()
    try:
        # Accepted, then closed with 4403 at once: browsers see the code only after the
        # handshake (a refused handshake reads as 1006); no snapshot is sent.
        assert connected
        closed = await comm.receive_output(timeout=5)
        assert closed["type"] == "websocket.close"
        assert closed["code"] == 4403
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("how", ["deactivated", "roles_withdrawn"])
async def test_revocation_closes_the_feed_with_4401(make_user: Any, how: str) -> None:
    """Issue 14: a disabled operator, or one whose roles are withdrawn, stops seeing the feed."""
    from apps.accounts.services import user_set_roles

    operator = await database_sync_to_async(make_user)("operator")
    headers = await database_sync_to_async(_cookie_for)(operator)
    comm = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await comm.connect()
    try:
        assert connected
        assert (await comm.receive_json_from(timeout=5))["event"] == "delphi:dashboard"

        def revoke() -> None:
            if how == "deactivated":
                operator.is_active = False
                operator.save()
            else:
                user_set_roles(user=operator, roles=["participant"])

        await database_sync_to_async(revoke)()  # commits: the after-commit event goes out
        while True:
            message = await comm.receive_output(timeout=5)
            if message["type"] == "websocket.close":
                break
        assert message["code"] == 4401
    finally:
        await comm.disconnect()


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://localhost:8000", None, True),  # CORS_ORIGINS
        ("http://127.0.0.1:9999", None, False),  # an allowed host name on another port
        ("https://localhost:8000", None, False),  # another scheme
        ("http://127.0.0.1:9999", "127.0.0.1:9999", True),  # the socket's own origin
        ("http://127.0.0.1:9999", "127.0.0.1:8000", False),
        ("http://evil.test:8000", "evil.test:8000", False),  # a host ALLOWED_HOSTS refuses
    ],
)
async def test_origin_must_match_scheme_host_and_port(
    make_user: Any, origin: str, host: str | None, allowed: bool
) -> None:
    """Issue 25 item 13: an admin's cookie from a page on another port is refused."""
    admin = await database_sync_to_async(make_user)("admin")
    headers = [
        (k, v) for k, v in await database_sync_to_async(_cookie_for)(admin) if k != b"origin"
    ]
    headers.append((b"origin", origin.encode()))
    if host:
        headers.append((b"host", host.encode()))
    comm = WebsocketCommunicator(application, PATH, headers=headers)
    connected, _ = await comm.connect()
    try:
        assert connected is allowed
        if allowed:
            assert (await comm.receive_json_from(timeout=5))["event"] == "delphi:dashboard"
    finally:
        await comm.disconnect()
