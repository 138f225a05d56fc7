"""Fixtures for the streaming tests: workers that look connected, sessions, channel helpers."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.sessions import services as session_services
from apps.streaming import services
from apps.streaming.models import StreamingWorker


@pytest.fixture
def make_session(db: Any) -> Callable[..., Any]:
    def make(owner: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("name", "room")
        return session_services.session_create(owner=owner, **kwargs)

    return make


@pytest.fixture
def online_worker(db: Any) -> Callable[..., StreamingWorker]:
    """A registered, heartbeating worker whose control socket is a test channel."""

    def make(name: str | None = None, *, max_streams: int = 2, load: float = 0.0) -> Any:
        worker, _ = services.worker_create(name=name or f"w-{uuid.uuid4().hex[:6]}")
        # A plain (not process-specific) name: the Redis layer pops it directly, no buffering.
        channel = f"testworker.{uuid.uuid4().hex}"
        async_to_sync(get_channel_layer().group_add)(services.worker_group(worker.id), channel)
        services.worker_register(
            worker_id=worker.id,
            channel_name=channel,
            capabilities={"max_streams": max_streams, "encoder": "libx264"},
        )
        worker.refresh_from_db()
        worker.load = load
        worker.last_heartbeat = timezone.now()
        worker.save()
        worker.test_channel = channel
        return worker

    return make


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
