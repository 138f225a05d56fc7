"""Two real daphne processes sharing Redis: members connected to different processes see each
other's joins, transmits and poses (the pose hash lives in Redis; each process ticks for its
own members)."""

import asyncio
import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels.db import database_sync_to_async as db
from django.conf import settings

from apps.accounts.services import roles_sync, token_pair_issue
from apps.accounts.tests.factories import UserFactory
from apps.core.testing import (
    current_database_url,
    daphne_args,
    free_port,
    port_open,
    spawn,
    stop,
    wait_until,
)
from apps.sessions import services
from apps.sessions.tests.sockets import pose

TIMEOUT = 10.0


@contextmanager
def daphne_processes(count: int) -> Iterator[list[int]]:
    env = {
        "DJANGO_SETTINGS_MODULE": "vrplatform.settings.test",
        "DATABASE_URL": current_database_url(),
        "TEST_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    ports = [free_port() for _ in range(count)]
    with tempfile.TemporaryDirectory(prefix="hermes-daphne-") as tmp:
        try:
            for port in ports:
                log = Path(tmp) / f"{port}.log"
                processes.append(spawn(daphne_args(port), log=log, env=env))
                wait_until(partial(port_open, port, 0.2), "daphne", process=processes[-1], log=log)
            yield ports
        finally:
            stop(*processes)


async def _event(ws: Any, name: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        while True:
            event = json.loads(await ws.recv())
            if event["event"] == name:
                return event["data"]

    return await asyncio.wait_for(read(), TIMEOUT)


async def _send(ws: Any, event: str, data: dict[str, Any]) -> None:
    await ws.send(json.dumps({"event": event, "data": data}))


async def _poses_from(ws: Any, participant_id: int) -> dict[str, Any]:
    while True:
        poses = await _event(ws, "hermes:poses")
        if str(participant_id) in poses["poses"]:
            return poses["poses"][str(participant_id)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
async def test_members_on_two_processes_see_each_other() -> None:
    await db(roles_sync)()
    alice = await db(UserFactory)(roles=["participant"])
    bob = await db(UserFactory)(roles=["participant"])
    session = await db(services.session_create)(owner=alice, name="two processes")
    tokens = [(await db(token_pair_issue)(user=u)).access for u in (alice, bob)]

    with daphne_processes(2) as ports:

        def url(port: int) -> str:
            return f"ws://127.0.0.1:{port}/ws/hermes/sessions/{session.id}/"

        async with (
            websockets.connect(
                url(ports[0]), subprotocols=["vrplatform.v1", f"bearer.{tokens[0]}"]
            ) as a,
            websockets.connect(
                url(ports[1]), subprotocols=["vrplatform.v1", f"bearer.{tokens[1]}"]
            ) as b,
        ):
            assert a.subprotocol == "vrplatform.v1"
            await _send(a, "hermes:session_join", {})
            a_id = (await _event(a, "hermes:session_established"))["participant_id"]
            await _send(b, "hermes:session_join", {})
            established = await _event(b, "hermes:session_established")
            b_id = established["participant_id"]
            assert {m["user_id"] for m in established["members"]} == {alice.pk, bob.pk}
            assert (await _event(a, "hermes:participant_joined"))["user_id"] == bob.pk

            await db(services.session_transmit)(
                session_id=session.id, user=alice, event="hello", payload={"n": 1}
            )
            for ws in (a, b):
                assert (await _event(ws, "hermes:transmit"))["payload"] == {"n": 1}

            await _send(a, "hermes:pose", pose(x=1.5, seq=7))
            seen_by_b = await _poses_from(b, a_id)
            assert seen_by_b["p"] == [1.5, 1.6, 0.0]
            assert seen_by_b["seq"] == 7
            await _send(b, "hermes:pose", pose(x=-2.0, seq=3))
            assert (await _poses_from(a, b_id))["p"] == [-2.0, 1.6, 0.0]

            await _send(b, "hermes:session_leave", {})
            assert (await _event(a, "hermes:participant_left"))["user_id"] == bob.pk
