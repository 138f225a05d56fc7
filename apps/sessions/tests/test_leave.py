"""Leaving through the API ends the membership of the user's open sockets too (issue 25, item
1): they stop receiving the session's events, a private session's ``hermes:transmit`` first."""

from typing import Any

import pytest
from channels.db import database_sync_to_async as db
from rest_framework.test import APIClient

from apps.sessions import services
from apps.sessions.tests.sockets import expect, joined_socket, run_on_commit, send

pytestmark = pytest.mark.django_db


def _leave(session_id: Any, token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.post(f"/api/hermes/sessions/{session_id}/leave").status_code


async def test_api_leave_stops_the_sockets_receiving_the_session(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest = await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host, visibility="private")
    await db(services.participant_join)(
        session_id=session.id, user=guest, invite_token=session.invite_token
    )
    guest_token = await db(token_for)(guest)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    b, _ = await joined_socket(session.id, guest_token)
    await expect(a, "hermes:participant_joined")

    assert await run_on_commit(_leave)(session.id, guest_token) in (200, 204)
    left = await expect(b, "hermes:participant_left")  # about themselves, then no more
    assert left["user_id"] == guest.pk
    assert (await expect(a, "hermes:participant_left"))["user_id"] == guest.pk

    await run_on_commit(services.session_transmit)(
        session_id=session.id, user=host, event="secret", payload={"x": 1}, state=None
    )
    assert (await expect(a, "hermes:transmit"))["event"] == "secret"
    assert await b.receive_nothing(timeout=0.5)
    # The socket stays open (and may join again); it is simply out of the session.
    await send(b, "hermes:pose", {"p": [0, 1.6, 0], "q": [0, 0, 0, 1], "t": 1.0, "seq": 1})
    assert (await expect(b, "error"))["code"] == "not_joined"
    await a.disconnect()
    await b.disconnect()
