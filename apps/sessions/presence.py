"""Which web process holds which session sockets, so a crashed process's count is undone.

``Participant.connections`` counts a participant's open sockets over every daphne process;
a socket closing decrements it. A process that dies (SIGKILL, OOM) never decrements, and its
participants would stay "present" for ever. So each process also records, in Redis, how many
sockets it holds per participant, and keeps a liveness key alive while it runs:

    <prefix>:presence:<process>:conns   hash participant id -> sockets in that process
    <prefix>:presence:<process>:alive   set every LIVE_REFRESH_S, expires after LIVE_TTL_S

``presence_reap`` finds the hashes of processes whose liveness key expired and takes their
sockets off the participants (those left with none have left: ``hermes:participant_left``).
It runs when a process opens its first session socket (a restarted daphne cleans up after
its crashed predecessor) and from Celery beat (``sessions.reap_presence``).

Redis being down costs only this bookkeeping (logged), never a socket.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref

from django.conf import settings

from apps.sessions import services

logger = logging.getLogger(__name__)

LIVE_TTL_S = 30
LIVE_REFRESH_S = 10.0
PROCESS_ID = f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:8]}"


def _prefix() -> str:
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return f"{config.get('prefix', 'vrp')}:presence"


def _keys(process: str) -> tuple[str, str]:
    base = f"{_prefix()}:{process}"
    return f"{base}:conns", f"{base}:alive"


def enabled() -> bool:
    return bool(getattr(settings, "REDIS_URL", ""))


class Presence:
    """This process's sockets, for one event loop (the Redis client belongs to the loop)."""

    def __init__(self, url: str, process: str = PROCESS_ID) -> None:
        import redis.asyncio as aioredis

        self.process = process
        self.client = aioredis.Redis.from_url(url, decode_responses=True)
        self.conns, self.alive = _keys(process)
        self.task: asyncio.Task[None] | None = None

    async def _keep_alive(self) -> None:
        while True:
            try:
                await self.client.set(self.alive, 1, ex=LIVE_TTL_S)
            except Exception:
                logger.warning("presence: could not refresh %s", self.alive)
            await asyncio.sleep(LIVE_REFRESH_S)

    async def start(self) -> None:
        # Claimed before the first await: the sockets joining while it runs (a restarted
        # process takes thousands at once) must not each reap, which took the same dead
        # process's sockets off its participants once per concurrent join.
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._keep_alive())
            # The first socket of this process: clean up after processes that died.
            from channels.db import database_sync_to_async

            await database_sync_to_async(presence_reap, thread_sensitive=False)()

    async def add(self, participant_id: int, n: int) -> None:
        try:
            await self.start()
            left = await self.client.hincrby(self.conns, str(participant_id), n)
            if left <= 0:
                await self.client.hdel(self.conns, str(participant_id))
            await self.client.expire(self.conns, 7 * 86400)
        except Exception:
            logger.warning("presence: could not record a socket of participant %s", participant_id)


_presences: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Presence] = (
    weakref.WeakKeyDictionary()
)


def presence() -> Presence | None:
    if not enabled():
        return None  # one process, in-memory layer: nothing can outlive it
    loop = asyncio.get_running_loop()
    found = _presences.get(loop)
    if found is None:
        found = _presences[loop] = Presence(settings.REDIS_URL)
    return found


def presence_reap() -> int:
    """Take the sockets of dead processes off their participants; returns how many."""
    if not enabled():
        return 0
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    taken = 0
    try:
        for key in client.scan_iter(match=f"{_prefix()}:*:conns", count=500):
            process = key[len(_prefix()) + 1 : -len(":conns")]
            if client.exists(_keys(process)[1]):
                continue  # alive
            for participant_id, count in client.hgetall(key).items():
                n = int(count)
                if n > 0 and participant_id.isdigit():
                    services.participant_sockets_lost(participant_id=int(participant_id), sockets=n)
                    taken += n
            client.delete(key)
            logger.warning("presence: process %s died holding %d sockets", process, taken)
    except redis.RedisError:
        logger.warning("presence: could not reap dead processes' sockets")
    finally:
        client.close()
    return taken
