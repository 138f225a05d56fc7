"""What the streaming tests read off the channel layer: commands queued for a worker's test
channel (see the ``online_worker`` fixture) and events sent to a session member."""

import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def worker_messages(worker: Any) -> list[dict[str, Any]]:
    """Every command queued for the worker's test channel (drains it)."""
    return [m["message"] for m in channel_messages(worker.test_channel)]


async def _drain(channel: str) -> list[dict[str, Any]]:
    import asyncio

    layer = get_channel_layer()
    out: list[dict[str, Any]] = []
    while True:
        try:
            async with asyncio.timeout(0.5):
                out.append(dict(await layer.receive(channel)))
        except TimeoutError:
            return out


def member_listener(session_id: Any, user_id: int) -> str:
    from apps.sessions.extensions import member_group

    channel = f"testmember.{uuid.uuid4().hex}"
    async_to_sync(get_channel_layer().group_add)(member_group(session_id, user_id), channel)
    return channel


def channel_messages(channel: str) -> list[dict[str, Any]]:
    """Everything queued for ``channel`` (drains it; waits 0.5 s after the last one)."""
    return async_to_sync(_drain)(channel)
