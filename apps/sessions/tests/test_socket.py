"""The session WebSocket against the real ASGI application and the Redis channel layer."""

import json
from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.db import database_sync_to_async as db
from channels.layers import get_channel_layer

from apps.accounts.services import user_set_roles
from apps.accounts.tests.factories import UserFactory
from apps.core.errors import Conflict
from apps.sessions import services
from apps.sessions.extensions import (
    ClientContext,
    member_group,
    register_client_event,
    session_group,
)
from apps.sessions.models import Participant
from apps.sessions.tests.sockets import (
    expect,
    expect_close,
    first_poses,
    joined_socket,
    next_event,
    open_socket,
    pose,
    run_on_commit,
    send,
)

pytestmark = pytest.mark.django_db


# --- authentication and access ----------------------------------------------------------------


async def test_subprotocol_auth_and_join(make_user: Any, make_session: Any, token_for: Any) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm, established = await joined_socket(session.id, await db(token_for)(host))
    assert established["role"] == "host"
    assert established["user_id"] == host.pk
    assert established["state"] == {}
    assert established["state_version"] == 0
    assert established["tick_hz"] == 30
    assert established["server_time"] > 0
    assert [m["user_id"] for m in established["members"]] == [host.pk]
    assert established["members"][0]["connected"] is True
    await comm.disconnect()


async def test_first_message_auth(make_user: Any, make_session: Any, token_for: Any) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm = await open_socket(session.id, None)
    await send(comm, "athena:authenticate", {"token": await db(token_for)(host)})
    await send(comm, "hermes:session_join")
    assert (await expect(comm, "hermes:session_established"))["user_id"] == host.pk
    await comm.disconnect()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("bad_token", 4401),
        ("not_authenticate_first", 4401),
        ("missing_session", 4404),
        ("private_stranger", 4404),
        ("invite_stranger", 4403),
        ("no_role", 4403),
        ("ended", 4000),
    ],
)
async def test_refused_sockets_close_with_documented_codes(
    case: str, code: int, make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, stranger = await db(make_user)(), await db(make_user)()
    session = await db(make_session)(
        host, visibility="private" if case == "private_stranger" else "public"
    )
    session_id: Any = session.id
    token: str | None = await db(token_for)(stranger)
    if case == "bad_token":
        token = "a.b.c"
    elif case == "missing_session":
        session_id = "00000000-0000-4000-8000-000000000000"
    elif case == "invite_stranger":
        session_id = (await db(make_session)(host, visibility="invite")).id
    elif case == "no_role":
        token = await db(token_for)(await database_sync_to_async(UserFactory)(roles=[]))
    elif case == "ended":
        await run_on_commit(services.session_end)(session_id=session.id)
    if case == "not_authenticate_first":
        comm = await open_socket(session_id, None)
        await send(comm, "hermes:session_join")
    else:
        comm = await open_socket(session_id, token)
    assert await expect_close(comm) == code
    await comm.disconnect()


async def test_auth_timeout(make_user: Any, make_session: Any, settings: Any) -> None:
    settings.HERMES_AUTH_TIMEOUT_S = 0.2
    session = await db(make_session)(await db(make_user)())
    comm = await open_socket(session.id, None)
    assert await expect_close(comm) == 4401
    await comm.disconnect()


async def test_token_expiry_closes_4401_unless_renewed(
    make_user: Any, make_session: Any, token_for: Any, settings: Any
) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    # JWT expiry has whole-second precision: 2 s leaves at least 1 s to join.
    settings.JWT_ACCESS_TTL = timedelta(seconds=2)
    comm, _ = await joined_socket(session.id, await db(token_for)(host))
    assert await expect_close(comm) == 4401
    await comm.disconnect()
    # The participant was marked left when the socket closed.
    participant = await database_sync_to_async(Participant.objects.get)(session=session, user=host)
    assert participant.left_at is not None
    assert participant.connections == 0

    comm, _ = await joined_socket(session.id, await db(token_for)(host))
    settings.JWT_ACCESS_TTL = timedelta(seconds=60)
    await send(comm, "athena:heartbeat", {"t": 5, "token": await db(token_for)(host)})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 5
    renewed = await expect(comm, "athena:wisdom_updated")
    assert renewed["reason"] == "token_renewed"
    assert renewed["roles"] == ["participant"]
    # Past the first token's expiry the socket still answers.
    await comm.receive_nothing(timeout=2.2)
    await send(comm, "athena:heartbeat", {"t": 6})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 6
    await comm.disconnect()


async def test_idle_socket_dropped_and_participant_left(
    make_user: Any, make_session: Any, token_for: Any, settings: Any
) -> None:
    settings.HERMES_IDLE_TIMEOUT_S = 0.3
    host, guest = await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host)
    settings.HERMES_IDLE_TIMEOUT_S = 30
    watcher, _ = await joined_socket(session.id, await db(token_for)(host))
    settings.HERMES_IDLE_TIMEOUT_S = 0.3
    idle, _ = await joined_socket(session.id, await db(token_for)(guest))
    await expect(watcher, "hermes:participant_joined")
    assert await expect_close(idle) == 4408
    left = await expect(watcher, "hermes:participant_left")
    assert left["user_id"] == guest.pk
    await idle.disconnect()
    await watcher.disconnect()


# --- membership events --------------------------------------------------------------------


async def test_join_leave_events_reach_members_only(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest, outsider = await db(make_user)(), await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host)
    other = await db(make_session)(outsider)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    c, _ = await joined_socket(other.id, await db(token_for)(outsider))
    b, established = await joined_socket(session.id, await db(token_for)(guest))
    assert {m["user_id"] for m in established["members"]} == {host.pk, guest.pk}
    joined = await expect(a, "hermes:participant_joined")
    assert joined["user_id"] == guest.pk
    assert joined["role"] == "participant"
    assert joined["participant_id"] == established["participant_id"]

    await send(b, "hermes:session_leave")
    left = await expect(a, "hermes:participant_left")
    assert (left["user_id"], left["reason"]) == (guest.pk, "left")
    # Reconnect restores the membership with the same role and participant id.
    b2, again = await joined_socket(session.id, await db(token_for)(guest))
    assert again["participant_id"] == established["participant_id"]
    await expect(a, "hermes:participant_joined")
    await b2.disconnect()
    assert (await expect(a, "hermes:participant_left"))["reason"] == "disconnected"

    # The outsider saw none of it: its first event is the one we now send it.
    await send(c, "athena:heartbeat", {"t": 1})
    assert (await next_event(c))["event"] == "athena:heartbeat"
    for comm in (a, b, c):
        await comm.disconnect()


async def test_transmit_and_state_survive_reconnect(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest, outsider = await db(make_user)(), await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host)
    other = await db(make_session)(outsider)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    b, _ = await joined_socket(session.id, await db(token_for)(guest))
    c, _ = await joined_socket(other.id, await db(token_for)(outsider))
    await expect(a, "hermes:participant_joined")

    await run_on_commit(services.session_transmit)(
        session_id=session.id,
        user=guest,
        event="door",
        payload={"open": True},
        state={"key": "door", "value": "open", "version": 0},
    )
    for comm in (a, b):  # every connected member, the sender included
        data = await expect(comm, "hermes:transmit")
        assert data["event"] == "door"
        assert data["payload"] == {"open": True}
        assert data["state"] == {"key": "door", "value": "open", "version": 1}
        assert data["from"]["user_id"] == guest.pk
    with pytest.raises(Conflict):
        await run_on_commit(services.session_transmit)(
            session_id=session.id,
            user=host,
            event="door",
            payload=None,
            state={"key": "door", "value": "shut", "version": 0},
        )
    await send(c, "athena:heartbeat", {"t": 1})
    assert (await next_event(c))["event"] == "athena:heartbeat"

    await b.disconnect()
    b, established = await joined_socket(session.id, await db(token_for)(guest))
    assert established["state"] == {"door": "open"}
    assert established["state_version"] == 1
    for comm in (a, b, c):
        await comm.disconnect()


async def test_session_end_notifies_and_closes_4000(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest, outsider = await db(make_user)(), await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host)
    other = await db(make_session)(outsider)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    b, _ = await joined_socket(session.id, await db(token_for)(guest))
    c, _ = await joined_socket(other.id, await db(token_for)(outsider))
    await expect(a, "hermes:participant_joined")
    await run_on_commit(services.session_end)(session_id=session.id)
    for comm in (a, b):
        assert (await expect(comm, "hermes:session_ended"))["session_id"] == str(session.id)
        assert await expect_close(comm) == 4000
    await send(c, "athena:heartbeat", {"t": 1})
    assert (await next_event(c))["event"] == "athena:heartbeat"
    for comm in (a, b, c):
        await comm.disconnect()


async def test_session_ending_while_a_socket_joins_still_reaches_it(
    make_user: Any, make_session: Any, token_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The end lands after the join's membership check and before the socket subscribes to
    the session's groups (a slow channel layer widens that window): the socket must still
    be told and closed, not left in a session that is over."""
    from apps.sessions import consumers

    host = await db(make_user)()
    session = await db(make_session)(host)
    check_membership = consumers.connect_participant

    async def then_end(**kwargs: Any) -> Any:
        live = await check_membership(**kwargs)
        await run_on_commit(services.session_end)(session_id=session.id)
        return live

    monkeypatch.setattr(consumers, "connect_participant", then_end)
    comm = await open_socket(session.id, await db(token_for)(host))
    await send(comm, "hermes:session_join", {})
    assert (await expect(comm, "hermes:session_ended"))["session_id"] == str(session.id)
    assert await expect_close(comm) == 4000
    await comm.disconnect()


async def test_session_full_over_socket(make_user: Any, make_session: Any, token_for: Any) -> None:
    host, guest = await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host, max_participants=1)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    b = await open_socket(session.id, await db(token_for)(guest))
    await send(b, "hermes:session_join")
    assert (await expect(b, "error"))["code"] == "session_full"
    await send(b, "athena:heartbeat", {"t": 2})  # still connected
    assert (await expect(b, "athena:heartbeat"))["t"] == 2
    await a.disconnect()
    await b.disconnect()


async def test_roles_change_pushes_wisdom_updated_and_revocation_closes(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm, _ = await joined_socket(session.id, await db(token_for)(host))
    await run_on_commit(user_set_roles)(user=host, roles=["participant", "creator"])
    data = await expect(comm, "athena:wisdom_updated")
    assert data["reason"] == "roles_changed"
    assert set(data["roles"]) == {"participant", "creator"}
    await run_on_commit(user_set_roles)(user=host, roles=[])
    assert await expect_close(comm) == 4401  # issue 14: revocation closes with 4401
    await comm.disconnect()


# --- poses -------------------------------------------------------------------------------


async def test_poses_reach_the_others_once_per_tick(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest, watcher, outsider = (
        await db(make_user)(),
        await db(make_user)(),
        await db(make_user)(),
        await db(make_user)(),
    )
    session = await db(make_session)(host)
    other = await db(make_session)(outsider)
    a, ea = await joined_socket(session.id, await db(token_for)(host))
    b, eb = await joined_socket(session.id, await db(token_for)(guest))
    s, _ = await joined_socket(session.id, await db(token_for)(watcher), role="spectator")
    c, _ = await joined_socket(other.id, await db(token_for)(outsider))
    c_mate, _ = await joined_socket(other.id, await db(token_for)(await db(make_user)()))

    for seq in range(1, 6):  # five poses within a tick: only the latest is kept
        await send(a, "hermes:pose", pose(x=float(seq), seq=seq))
    poses = await first_poses(b)
    assert set(poses) == {str(ea["participant_id"])}
    assert poses[str(ea["participant_id"])]["p"][0] == poses[str(ea["participant_id"])]["seq"]
    spectator_view = await first_poses(s)
    assert str(ea["participant_id"]) in spectator_view

    await send(b, "hermes:pose", {**pose(x=2.0), "hands": {"left": pose(x=0.5)}})
    seen = await first_poses(a)
    while str(eb["participant_id"]) not in seen:
        seen = await first_poses(a)
    assert str(ea["participant_id"]) not in seen  # never one's own pose
    assert seen[str(eb["participant_id"])]["hands"]["left"]["p"] == [0.5, 1.6, 0.0]

    await send(s, "hermes:pose", pose())
    assert (await expect(s, "error"))["code"] == "forbidden"

    # The other session's members receive no poses from this one: c's next event is the
    # snapshot with its own session-mate's pose.
    await send(c_mate, "hermes:pose", pose(x=9.0))
    mate_pose = await first_poses(c)
    assert [p["p"][0] for p in mate_pose.values()] == [9.0]
    for comm in (a, b, s, c, c_mate):
        await comm.disconnect()


# --- bad input and limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"text_data": "x" * (16 * 1024 + 1)}, "too_large"),
        ({"text_data": "{not json"}, "bad_json"),
        ({"bytes_data": b"\x00\x01"}, "binary_not_supported"),
        ({"text_data": json.dumps({"event": "nope:nope", "data": {}})}, "unknown_event"),
        ({"text_data": json.dumps({"event": 5, "data": {}})}, "bad_envelope"),
        ({"text_data": json.dumps({"event": "hermes:pose", "data": []})}, "bad_envelope"),
        ({"text_data": json.dumps(["hermes:pose"])}, "bad_envelope"),
        (
            {"text_data": '{"event":"hermes:pose","data":{"p":[NaN,0,0],"q":[0,0,0,1]}}'},
            "bad_value",
        ),
        (
            {"text_data": json.dumps({"event": "hermes:pose", "data": pose(x=1e9)})},
            "out_of_range",
        ),
        (
            {"text_data": json.dumps({"event": "hermes:pose", "data": {**pose(), "seq": "1"}})},
            "bad_type",
        ),
        (
            {
                "text_data": json.dumps(
                    {"event": "hermes:pose", "data": {**pose(), "q": [0, 0, 0, 5]}}
                )
            },
            "out_of_range",
        ),
        ({"text_data": json.dumps({"event": "athena:heartbeat", "data": {"t": "x"}})}, "bad_type"),
        (
            {"text_data": json.dumps({"event": "hermes:session_join", "data": {"role": 3}})},
            "bad_type",
        ),
        (
            {"text_data": json.dumps({"event": "hermes:session_join", "data": {"role": "host"}})},
            "already_joined",
        ),
    ],
)
async def test_bad_input_gets_error_and_socket_stays(
    frame: dict[str, Any], code: str, make_user: Any, make_session: Any, token_for: Any
) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm, _ = await joined_socket(session.id, await db(token_for)(host))
    await comm.send_to(**frame)
    assert (await expect(comm, "error"))["code"] == code
    await send(comm, "athena:heartbeat", {"t": 42})
    assert (await expect(comm, "athena:heartbeat"))["t"] == 42
    await comm.disconnect()


async def test_events_before_join_are_refused(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm = await open_socket(session.id, await db(token_for)(host))
    await send(comm, "hermes:pose", pose())
    assert (await expect(comm, "error"))["code"] == "not_joined"
    await send(comm, "hermes:session_leave")
    assert (await expect(comm, "error"))["code"] == "not_joined"
    await comm.disconnect()


async def test_flood_is_rate_limited_then_closed_4429(
    make_user: Any, make_session: Any, token_for: Any, settings: Any
) -> None:
    settings.HERMES_WS_RATE = 1
    settings.HERMES_WS_BURST = 3
    settings.HERMES_WS_FLOOD_STRIKES = 10
    host = await db(make_user)()
    session = await db(make_session)(host)
    comm = await open_socket(session.id, await db(token_for)(host))
    for i in range(3):
        await send(comm, "athena:heartbeat", {"t": i})
        assert (await expect(comm, "athena:heartbeat"))["t"] == i
    await send(comm, "athena:heartbeat", {"t": 3})
    assert (await expect(comm, "error"))["code"] == "rate_limited"
    for i in range(20):
        await send(comm, "athena:heartbeat", {"t": i})
    assert await expect_close(comm) == 4429
    await comm.disconnect()


# --- extension points ----------------------------------------------------------------------


async def _echo(context: ClientContext, data: dict[str, Any]) -> None:
    if data.get("fail") == "platform":
        raise Conflict("nope", code="echo_conflict")
    if data.get("fail") == "bug":
        raise RuntimeError("boom")
    await get_channel_layer().group_send(
        member_group(context.session_id, context.user_id),
        {"type": "client.event", "event": "test:echoed", "data": {"role": context.role, **data}},
    )


register_client_event("test:echo", _echo)


async def test_registered_client_events_and_group_delivery(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    host, guest = await db(make_user)(), await db(make_user)()
    session = await db(make_session)(host)
    a, _ = await joined_socket(session.id, await db(token_for)(host))
    b, _ = await joined_socket(session.id, await db(token_for)(guest))
    await expect(a, "hermes:participant_joined")
    await send(a, "test:echo", {"x": 1})
    assert await expect(a, "test:echoed") == {"role": "host", "x": 1}
    await send(a, "test:echo", {"fail": "platform"})
    assert (await expect(a, "error"))["code"] == "echo_conflict"
    await send(a, "test:echo", {"fail": "bug"})
    assert (await expect(a, "error"))["code"] == "internal_error"
    # session_group reaches everyone; b never saw a's echoes (its first event is this one).
    await get_channel_layer().group_send(
        session_group(session.id), {"type": "client.event", "event": "test:all", "data": {}}
    )
    assert (await next_event(b))["event"] == "test:all"
    assert (await next_event(a))["event"] == "test:all"
    for comm in (a, b):
        await comm.disconnect()


# --- metrics ----------------------------------------------------------------------------------


async def test_socket_drives_the_websocket_metrics(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    host = await db(make_user)()
    session = await db(make_session)(host)
    connections = value("vrplatform_websocket_connections")
    joins = value("vrplatform_websocket_messages_total", {"event": "hermes:session_join"})
    comm, _ = await joined_socket(session.id, await db(token_for)(host))
    assert value("vrplatform_websocket_connections") == connections + 1
    assert value("vrplatform_websocket_messages_total", {"event": "hermes:session_join"}) == (
        joins + 1
    )
    await comm.disconnect()
    assert value("vrplatform_websocket_connections") == connections
