"""The real Redis channel layer must tolerate idle consumers.

channels_redis blocks on BZPOPMIN for up to 5 s per receive; redis-py 8 defaults to a 5 s
socket timeout, which made every idle WebSocket consumer die with a Redis TimeoutError about
6 s after connecting (seen through daphne in the browser tests). This test waits past that.
"""

import asyncio

import pytest
from channels.layers import get_channel_layer


async def test_idle_receive_outlives_the_redis_blocking_pop():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    with pytest.raises(asyncio.TimeoutError):  # nothing arrives, and nothing else breaks
        await asyncio.wait_for(layer.receive(channel), timeout=7)
    await layer.send(channel, {"type": "still.alive"})
    assert (await asyncio.wait_for(layer.receive(channel), timeout=2))["type"] == "still.alive"
