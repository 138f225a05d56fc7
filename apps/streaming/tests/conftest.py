"""Fixtures for the streaming tests: workers that look connected (``make_session`` is the root
conftest's; the channel helpers are in ``messages.py``)."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.streaming import services
from apps.streaming.models import StreamingWorker


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
