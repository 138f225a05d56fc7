"""What keeps one process serving thousands of session sockets (benchmarks/bench_connections)."""

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async as db
from channels.layers import get_channel_layer

from apps.sessions.consumers import LAYER_SLOTS, SessionConsumer
from apps.sessions.tests.sockets import expect, expect_close, open_socket, send

pytestmark = pytest.mark.django_db


async def test_a_burst_of_group_joins_beyond_the_redis_pool_all_succeed() -> None:
    """redis-py's asyncio pool raises MaxConnectionsError past 100 connections instead of
    waiting; a burst of sign-ins (each a group_add) used to close sockets with 1011."""
    layer = get_channel_layer()
    consumers = []
    for _ in range(3 * LAYER_SLOTS):
        consumer = SessionConsumer()
        consumer.channel_layer = layer
        consumer.channel_name = await layer.new_channel()
        consumers.append(consumer)
    group = "hermes.test.burst"

    await asyncio.gather(*(c.group_join(group) for c in consumers))
    try:
        if hasattr(layer, "connection"):  # channels_redis: count the group's members
            async with layer.connection(layer.consistent_hash(group)) as conn:
                assert await conn.zcard(layer._group_key(group)) == len(consumers)
    finally:
        await asyncio.gather(*(c.group_leave(group) for c in consumers))
    if hasattr(layer, "flush"):
        await layer.flush()


async def test_heartbeats_are_answered_while_the_database_thread_is_busy(
    make_user: Any, make_session: Any, token_for: Any
) -> None:
    """Channels' default dispatch runs close_old_connections on its one sync thread for every
    frame, so heartbeats queued behind sign-ins there. Ours answer on the event loop."""
    host = await db(make_user)("participant")
    session = await db(make_session)(host)
    comm = await open_socket(session.id, await db(token_for)(host))
    release = threading.Event()
    # Occupy the thread-sensitive thread (Channels' and asgiref's shared one).
    blocker = asyncio.ensure_future(sync_to_async(release.wait)())
    try:
        await send(comm, "athena:heartbeat", {"t": 7})
        assert (await expect(comm, "athena:heartbeat"))["t"] == 7
    finally:
        release.set()
        await blocker
        await comm.disconnect()


async def test_a_connect_while_the_database_backlog_is_full_is_turned_away_at_once(
    make_user: Any, make_session: Any, token_for: Any, settings: Any
) -> None:
    """Admission control: past HERMES_CONNECT_BACKLOG_LIMIT database calls in flight, a new
    socket is closed with 4503 before its sign-in costs anything, and is let in once the
    backlog drains (the client retries after its backoff)."""
    from apps.core.instruments import ws_refused
    from apps.core.sockets import db_backlog, db_call

    host = await db(make_user)("participant")
    session = await db(make_session)(host)
    token = await db(token_for)(host)
    settings.HERMES_CONNECT_BACKLOG_LIMIT = 3
    release = threading.Event()
    held = db_call(lambda: release.wait(timeout=10))
    busy = [asyncio.ensure_future(held()) for _ in range(3)]
    refused_before = ws_refused._value.get()
    try:
        for _ in range(50):
            if db_backlog() == 3:
                break
            await asyncio.sleep(0.01)
        assert db_backlog() == 3
        comm = await open_socket(session.id, token)
        assert (await expect_close(comm)) == 4503
        assert ws_refused._value.get() == refused_before + 1
    finally:
        release.set()
        await asyncio.gather(*busy)
    assert db_backlog() == 0
    comm = await open_socket(session.id, token)
    await send(comm, "hermes:session_join", {})
    await expect(comm, "hermes:session_established")
    await comm.disconnect()
