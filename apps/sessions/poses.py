"""Pose snapshots: the latest pose per participant, one ``hermes:poses`` per member per tick.

Sending every pose to every member is O(N²) messages per pose period; instead each process
keeps one *room* per session that has members connected to it, and one ticker task per room:

1. Consumers put validated poses into the room's ``pending`` dict (latest per participant
   wins: a pose superseded within a tick is never sent anywhere).
2. Each tick (``SESSION_TICK_HZ``, default 30, at most 90) the ticker hands ``pending`` to the
   store and, in the same round trip, reads back every pose that changed since its last tick,
   from any process. With Redis that is one Lua script call per tick per (process, session):
   a hash of pose JSON per participant, a sorted set of participant → version and a version
   counter, so only changed fields are read. Without Redis (the in-memory channel layer, one
   process) the store is a dict.
3. The ticker builds one message per local member holding the *others'* changed poses and
   sends it to the consumer directly, not through the channel layer.

The room registry is in-process state by design (it is what makes fan-out local); it is kept
per event loop, so each test's loop and each daphne process has its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
import weakref
from typing import Any, Protocol

from django.conf import settings

logger = logging.getLogger(__name__)

KEY_TTL_S = 3600  # poses of an abandoned session vanish an hour after its last write

_EXCHANGE_LUA = """
local last = tonumber(ARGV[1])
for i = 3, #ARGV, 2 do
  local v = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], v, ARGV[i])
end
if #ARGV > 2 then
  for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[2]) end
end
local cur = tonumber(redis.call('GET', KEYS[3]) or '0')
if cur < last then last = 0 end
if cur == last then return {cur} end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. last, '+inf')
local out = {cur}
if #ids > 0 then
  local vals = redis.call('HMGET', KEYS[1], unpack(ids))
  for i = 1, #ids do
    if vals[i] then
      out[#out + 1] = ids[i]
      out[#out + 1] = vals[i]
    end
  end
end
return out
"""


def tick_hz() -> int:
    return max(1, min(90, int(settings.SESSION_TICK_HZ)))


def _key_prefix() -> str:
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    return f"{config.get('prefix', 'vrp')}:hermes:poses"


def _keys(session_id: uuid.UUID) -> list[str]:
    base = f"{_key_prefix()}:{session_id.hex}"
    return [f"{base}:h", f"{base}:z", f"{base}:v"]


def _use_redis() -> bool:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(getattr(settings, "REDIS_URL", "")) and "channels_redis" in backend


class PoseStore(Protocol):
    async def exchange(
        self, session_id: uuid.UUID, pending: dict[int, str], since: int
    ) -> tuple[int, dict[int, str]]: ...

    async def remove(self, session_id: uuid.UUID, participant_id: int) -> None: ...

    async def aclose(self) -> None: ...


class LocalPoseStore:
    """One process, no Redis: the same versioned semantics over dicts."""

    def __init__(self) -> None:
        self._sessions: dict[uuid.UUID, tuple[list[int], dict[int, tuple[int, str]]]] = {}

    async def exchange(
        self, session_id: uuid.UUID, pending: dict[int, str], since: int
    ) -> tuple[int, dict[int, str]]:
        counter, poses = self._sessions.setdefault(session_id, ([0], {}))
        for pid, pose in pending.items():
            counter[0] += 1
            poses[pid] = (counter[0], pose)
        if counter[0] < since:
            since = 0
        return counter[0], {pid: pose for pid, (v, pose) in poses.items() if v > since}

    async def remove(self, session_id: uuid.UUID, participant_id: int) -> None:
        entry = self._sessions.get(session_id)
        if entry is not None:
            entry[1].pop(participant_id, None)

    def forget(self, session_id: uuid.UUID) -> None:
        self._sessions.pop(session_id, None)

    async def aclose(self) -> None:
        return None


class RedisPoseStore:
    """Across processes: a hash, a sorted set of versions and a counter per session."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._script: Any = None

    def _ensure(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self._url, decode_responses=True)
            self._script = self._client.register_script(_EXCHANGE_LUA)
        return self._script

    async def exchange(
        self, session_id: uuid.UUID, pending: dict[int, str], since: int
    ) -> tuple[int, dict[int, str]]:
        script = self._ensure()
        args: list[Any] = [since, KEY_TTL_S]
        for pid, pose in pending.items():
            args.append(pid)
            args.append(pose)
        reply = await script(keys=_keys(session_id), args=args)
        changed = {int(reply[i]): reply[i + 1] for i in range(1, len(reply), 2)}
        return int(reply[0]), changed

    async def remove(self, session_id: uuid.UUID, participant_id: int) -> None:
        hash_key, zset_key, _ = _keys(session_id)
        client = self._client
        if client is None:
            self._ensure()
            client = self._client
        async with client.pipeline(transaction=True) as pipe:
            pipe.hdel(hash_key, participant_id)
            pipe.zrem(zset_key, participant_id)
            await pipe.execute()

    async def aclose(self) -> None:
        client, self._client, self._script = self._client, None, None
        if client is not None:
            await client.aclose()


_local_store = LocalPoseStore()


def pose_store_forget_session(session_id: uuid.UUID) -> None:
    """Drop an ended session's poses (sync: called after commit by ``session_end``)."""
    if not _use_redis():
        _local_store.forget(session_id)
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.delete(*_keys(session_id))
    except redis.RedisError:
        logger.warning("could not delete the poses of session %s", session_id)
    finally:
        client.close()


class PoseMember(Protocol):
    """What the ticker needs from a consumer."""

    participant_id: int

    async def send_poses(self, text: str) -> None: ...


class RemotePoseMember(Protocol):
    """A streaming worker in the room (cross-worker sessions): each tick it gets the changed
    poses as they are and sends on those of the participants it does not stream itself."""

    async def remote_poses(self, changed: dict[int, str], server_time: float) -> None: ...


class Room:
    """The members of one session connected to this process, and their ticker."""

    def __init__(self, hub: PoseHub, session_id: uuid.UUID) -> None:
        self.hub = hub
        self.session_id = session_id
        self.members: dict[str, PoseMember | RemotePoseMember] = {}
        self.pending: dict[int, str] = {}
        self.version = 0
        self.tick = 0
        self.task: asyncio.Task[None] | None = None
        self._errors = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.hub.tick_hz
        deadline = loop.time()
        try:
            while self.members:
                deadline += interval
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    deadline = loop.time()  # running late: skip ticks rather than burst
                if not self.members:
                    break
                try:
                    await self.run_tick()
                    self._errors = 0
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Redis blips must not kill the room; log once per streak.
                    self._errors += 1
                    if self._errors == 1:
                        logger.exception("pose tick failed for session %s", self.session_id)
        finally:
            self.hub.room_finished(self)

    async def run_tick(self) -> None:
        pending, self.pending = self.pending, {}
        self.version, changed = await self.hub.store.exchange(
            self.session_id, pending, self.version
        )
        if not changed:
            return
        self.tick += 1
        server_time = time.time() * 1000.0
        head = (
            f'{{"event":"hermes:poses","data":{{"tick":{self.tick},'
            f'"server_time":{server_time:.1f},"poses":{{'
        )
        parts = [(pid, f'"{pid}":{pose}') for pid, pose in changed.items()]
        bodies: dict[int, str] = {}
        for member in list(self.members.values()):
            if not hasattr(member, "participant_id"):
                try:
                    await member.remote_poses(changed, server_time)  # type: ignore[union-attr]
                except Exception:
                    logger.debug("could not send remote poses", exc_info=True)
                continue
            pid = member.participant_id
            body = bodies.get(pid)
            if body is None:
                body = bodies[pid] = ",".join(text for other, text in parts if other != pid)
            if not body:
                continue
            try:
                await member.send_poses(head + body + "}}}")
            except Exception:  # a socket closing under us: its disconnect cleans up
                logger.debug("could not send poses", exc_info=True)


class PoseHub:
    """This event loop's rooms and pose store."""

    def __init__(self, store: PoseStore, tick_hz: int) -> None:
        self.store = store
        self.tick_hz = tick_hz
        self.rooms: dict[uuid.UUID, Room] = {}

    def join(
        self, session_id: uuid.UUID, channel_name: str, member: PoseMember | RemotePoseMember
    ) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            room = self.rooms[session_id] = Room(self, session_id)
        room.members[channel_name] = member
        if room.task is None:
            room.task = asyncio.get_running_loop().create_task(room.run())

    def put(self, session_id: uuid.UUID, participant_id: int, pose_json: str) -> None:
        room = self.rooms.get(session_id)
        if room is not None:
            room.pending[participant_id] = pose_json

    async def leave(
        self, session_id: uuid.UUID, channel_name: str, participant_id: int, *, gone: bool
    ) -> None:
        """A socket leaves the room; ``gone``: the participant left, drop their pose."""
        room = self.rooms.get(session_id)
        if room is not None:
            room.members.pop(channel_name, None)
            room.pending.pop(participant_id, None)
            if not room.members:
                del self.rooms[session_id]
                if room.task is not None:
                    room.task.cancel()
        if gone:
            await self.store.remove(session_id, participant_id)
        if not self.rooms:
            # Nobody left on this loop: release the Redis connections (a later join reopens).
            await self.store.aclose()

    def room_finished(self, room: Room) -> None:
        if self.rooms.get(room.session_id) is room:
            del self.rooms[room.session_id]
        if room.members:  # someone joined while the ticker stopped: start a fresh room
            for name, member in room.members.items():
                self.join(room.session_id, name, member)


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PoseHub] = weakref.WeakKeyDictionary()


_heap_frozen = False


def freeze_startup_heap() -> None:
    """Move everything allocated so far (Django, apps, URL and ORM caches) out of the GC's
    reach. By the first session socket it is all imported; without this, full collections over
    that heap paused the loop for ~100 ms under pose load (p99 pose age 107 → 26 ms at 32
    participants in bench_sessions)."""
    global _heap_frozen
    if not _heap_frozen and settings.HERMES_GC_FREEZE:
        _heap_frozen = True
        gc.freeze()


def pose_hub() -> PoseHub:
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        store: PoseStore = RedisPoseStore(settings.REDIS_URL) if _use_redis() else _local_store
        hub = _hubs[loop] = PoseHub(store, tick_hz())
    return hub
