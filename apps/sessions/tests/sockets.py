"""Helpers of the session socket tests: a signed-in ``WebsocketCommunicator`` on the real ASGI
application, Hermes events sent and expected, poses. (The fixtures are in ``conftest.py``.)"""

import json
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

TIMEOUT = 3.0


def ws_path(session_id: Any) -> str:
    return f"/ws/hermes/sessions/{session_id}/"


async def open_socket(
    session_id: Any, token: str | None, *, subprotocols: list[str] | None = None
) -> WebsocketCommunicator:
    from vrplatform.asgi import application

    protocols = subprotocols or ["vrplatform.v1"] + ([f"bearer.{token}"] if token else [])
    comm = WebsocketCommunicator(application, ws_path(session_id), subprotocols=protocols)
    connected, subprotocol = await comm.connect(timeout=TIMEOUT)
    assert connected
    assert subprotocol == "vrplatform.v1"
    return comm


async def send(comm: WebsocketCommunicator, event: str, data: Any = None) -> None:
    await comm.send_to(text_data=json.dumps({"event": event, "data": data or {}}))


async def next_event(comm: WebsocketCommunicator, *, skip_poses: bool = True) -> dict[str, Any]:
    while True:
        message = await comm.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            raise AssertionError(f"socket closed with {message.get('code')}")
        event = json.loads(message["text"])
        if skip_poses and event["event"] == "hermes:poses":
            continue
        return event


async def expect(comm: WebsocketCommunicator, name: str, **kwargs: Any) -> dict[str, Any]:
    event = await next_event(comm, **kwargs)
    assert event["event"] == name, event
    return event["data"]


async def expect_close(comm: WebsocketCommunicator) -> int:
    """The close code, skipping any events sent before it."""
    while True:
        message = await comm.receive_output(timeout=TIMEOUT)
        if message["type"] == "websocket.close":
            return int(message.get("code", 1000))


async def joined_socket(session_id: Any, token: str, **join: Any) -> tuple[Any, dict[str, Any]]:
    comm = await open_socket(session_id, token)
    await send(comm, "hermes:session_join", join)
    established = await expect(comm, "hermes:session_established")
    return comm, established


def run_on_commit(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``func`` in a thread, executing the on-commit callbacks it registers (the test's
    transaction never commits)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from django.test import TestCase

        with TestCase.captureOnCommitCallbacks(execute=True):
            return func(*args, **kwargs)

    return database_sync_to_async(wrapper)


def pose(x: float = 0.0, seq: int = 1, t: float = 1.0) -> dict[str, Any]:
    return {"p": [x, 1.6, 0.0], "q": [0.0, 0.0, 0.0, 1.0], "t": t, "seq": seq}


async def first_poses(comm: WebsocketCommunicator) -> dict[str, Any]:
    while True:
        event = await next_event(comm, skip_poses=False)
        if event["event"] == "hermes:poses":
            return event["data"]["poses"]
