"""A token renewed over the socket (``athena:heartbeat`` with ``token``) passes the checks of
a connecting one (issue 25, item 4): a ``profile``-only OAuth2 token used to be accepted, and
once the first token was revoked the socket lived on on a token that may not use sessions."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async as db
from oauth2_provider.models import get_application_model

from apps.accounts.tests.factories import AccessTokenFactory, OAuthApplicationFactory
from apps.sessions.tests.sockets import expect, expect_close, joined_socket, run_on_commit, send

pytestmark = pytest.mark.django_db


def _oauth_token(user: Any, scope: str) -> tuple[Any, str]:
    app = get_application_model().objects.filter(name="tool").first()
    app = app or OAuthApplicationFactory(user=user)
    token = AccessTokenFactory(user=user, application=app, scope=scope)
    return token, token.token


async def test_renewal_needs_the_scope_a_connecting_token_needs(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    first, first_raw = await db(_oauth_token)(host, "sessions")
    _, profile_only = await db(_oauth_token)(host, "profile")
    comm, _ = await joined_socket(session.id, first_raw)

    await send(comm, "athena:heartbeat", {"t": 1, "token": profile_only})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 1
    refused = await expect(comm, "error")
    assert refused["code"] in ("permission_denied", "forbidden", "insufficient_scope")
    # Not adopted: revoking the socket's own token still closes it.
    await run_on_commit(first.revoke)()
    assert await expect_close(comm) == 4401
    await comm.disconnect()


async def test_a_good_renewal_is_still_taken(make_user, make_session) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    _, first_raw = await db(_oauth_token)(host, "sessions")
    second, second_raw = await db(_oauth_token)(host, "sessions profile")
    comm, _ = await joined_socket(session.id, first_raw)
    await send(comm, "athena:heartbeat", {"t": 2, "token": second_raw})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 2
    assert (await expect(comm, "athena:wisdom_updated"))["reason"] == "token_renewed"
    await run_on_commit(second.revoke)()  # the socket now runs on the second token
    assert await expect_close(comm) == 4401
    await comm.disconnect()
