"""Revocation closes the sockets it concerns with 4401 (issue 14, finding 3): sign-out, a
replayed refresh token, an OAuth2 token revoked, an account disabled, roles withdrawn. Each
test also keeps a second socket of the same user, on another sign-in, that must stay open."""

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async as db
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.services import token_pair_issue, token_refresh, user_set_roles
from apps.accounts.tests.factories import AccessTokenFactory
from apps.accounts.tokens import access_token_decode, access_token_deny
from apps.core.errors import AuthenticationFailed
from apps.sessions.tests.sockets import (
    expect,
    expect_close,
    joined_socket,
    run_on_commit,
    send,
)

pytestmark = pytest.mark.django_db


async def still_open(comm: Any) -> None:
    await send(comm, "athena:heartbeat", {"t": 7})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 7


def _api(method: str, url: str, token: str, body: dict[str, Any] | None = None) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return getattr(client, method)(url, body, format="json")


async def test_logout_closes_the_sockets_of_that_sign_in(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    first = await db(token_pair_issue)(user=host)
    # The socket signed in with the first access token; the client refreshed since.
    comm, _ = await joined_socket(session.id, first.access)
    second = await db(token_refresh)(refresh=first.refresh)
    other_device = await db(token_pair_issue)(user=host)
    other, _ = await joined_socket(session.id, other_device.access)

    response = await run_on_commit(_api)(
        "post", "/api/athena/logout", second.access, {"refresh": second.refresh}
    )
    assert response.status_code == 204
    assert await expect_close(comm) == 4401
    await still_open(other)  # another sign-in of the same user is not signed out
    await comm.disconnect()
    await other.disconnect()


async def test_refresh_token_replay_closes_the_family_sockets(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    pair = await db(token_pair_issue)(user=host)
    comm, _ = await joined_socket(session.id, pair.access)
    other, _ = await joined_socket(session.id, (await db(token_pair_issue)(user=host)).access)
    await db(token_refresh)(refresh=pair.refresh)

    def replay() -> str:
        try:
            token_refresh(refresh=pair.refresh)
        except AuthenticationFailed as exc:
            return exc.code
        return "accepted"

    assert await run_on_commit(replay)() == "refresh_token_reused"
    assert await expect_close(comm) == 4401
    await still_open(other)
    await comm.disconnect()
    await other.disconnect()


async def test_heartbeat_with_a_revoked_token_closes(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    pair = await db(token_pair_issue)(user=host)
    comm, _ = await joined_socket(session.id, pair.access)
    # Denied without the socket hearing of it (as if the notification were lost).
    claims = access_token_decode(pair.access)
    await db(access_token_deny)(jti=claims.jti, expires_at=claims.expires_at)
    await send(comm, "athena:heartbeat", {"t": 1, "token": pair.access})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 1
    assert (await expect(comm, "error"))["code"] == "token_revoked"
    assert await expect_close(comm) == 4401
    await comm.disconnect()


async def test_deactivating_the_account_closes_all_its_sockets(make_user, make_session) -> None:
    host = await db(make_user)()
    bystander = await db(make_user)()
    session = await db(make_session)(host, visibility="public")
    first, _ = await joined_socket(session.id, (await db(token_pair_issue)(user=host)).access)
    second, _ = await joined_socket(session.id, (await db(token_pair_issue)(user=host)).access)
    watcher, _ = await joined_socket(
        session.id, (await db(token_pair_issue)(user=bystander)).access
    )

    def deactivate() -> None:
        host.is_active = False
        host.save()

    await run_on_commit(deactivate)()
    assert await expect_close(first) == 4401
    assert await expect_close(second) == 4401
    await still_open(watcher)
    for comm in (first, second, watcher):
        await comm.disconnect()


async def test_withdrawn_roles_close_with_4401(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm, _ = await joined_socket(session.id, (await db(token_pair_issue)(user=host)).access)
    await run_on_commit(user_set_roles)(user=host, roles=["participant", "creator"])
    assert (await expect(comm, "athena:wisdom_updated"))["reason"] == "roles_changed"
    await still_open(comm)  # more roles: nothing to close
    await run_on_commit(user_set_roles)(user=host, roles=[])
    assert await expect_close(comm) == 4401
    await comm.disconnect()


async def test_revoking_an_oauth2_token_closes_its_sockets(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)

    def oauth_token(raw: str) -> Any:
        return AccessTokenFactory(
            user=host,
            token=raw,
            scope="sessions",
            application__name=f"app-{raw}",
            application__authorization_grant_type="client-credentials",
            expires=timezone.now() + timedelta(minutes=5),
        )

    token = await db(oauth_token)("revoked-oauth-token-0001")
    await db(oauth_token)("kept-oauth-token-0002")
    comm, _ = await joined_socket(session.id, "revoked-oauth-token-0001")
    other, _ = await joined_socket(session.id, "kept-oauth-token-0002")
    await run_on_commit(token.revoke)()
    assert await expect_close(comm) == 4401
    await still_open(other)
    await comm.disconnect()
    await other.disconnect()
