"""Readiness of the data layer: database, cache and channel layer."""

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import connection


def dependency_status() -> dict[str, str]:
    """Return ``{"database": "ok" | error, "cache": ..., "channel_layer": ...}``."""
    return {
        "database": _check(_database),
        "cache": _check(_cache),
        "channel_layer": _check(_channel_layer),
    }


def _check(probe: object) -> str:
    try:
        probe()  # type: ignore[operator]
    except Exception as exc:  # any failure means "not ready"; the message says which
        return f"error: {type(exc).__name__}: {exc}"[:300]
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def _channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def roundtrip() -> None:
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "readyz.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=2)
        if message.get("type") != "readyz.ping":
            raise RuntimeError("channel layer returned an unexpected message")

    async_to_sync(roundtrip)()
