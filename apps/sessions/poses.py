"""Pose snapshots: the latest pose per participant, one ``hermes:poses`` per member per tick.

Sending every pose to every member is O(N²) messages per pose period; instead each process
keeps one *room* per session that has members connected to it, and one ticker per process:

1. Consumers put validated poses into the room's ``pending`` dict (latest per participant
   wins: a pose superseded within a tick is never sent anywhere).
2. Each tick (``SESSION_TICK_HZ``, default 30, at most 90) the ticker asks the store which
   sessions changed since its last tick, from any process (a *change feed*: a counter and a
   sorted set of session → feed version), and exchanges only the rooms that have pending poses
   or changed: it hands ``pending`` to the store and, in the same round trip, reads back every
   pose that changed since the room's last exchange. With Redis that is one pipeline per tick
   per process (a Lua script per exchanged room: a hash of pose JSON per participant, a sorted
   set of participant → version and a version counter, so only changed fields are read).
   Without Redis (the in-memory channel layer, one process) the store is a dict.
3. The ticker builds one message per local member holding the *others'* changed poses and
   sends it to the consumer directly, not through the channel layer.

A room where nobody moves costs nothing per tick. Before the feed each room had its own
ticker and Redis call every tick, moving or not: at 10,000 users in sessions of 8 over two
processes that was 2,500 rooms x 30 Hz = 75,000 script calls/s of idle polling (the first
hot spot of ``bench_load.py``'s profile).

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

# KEYS: the session's hash, sorted set and counter, then the feed's counter and sorted set.
# ARGV: since, key TTL, the session's feed member, then participant id and pose JSON pairs.
_EXCHANGE_LUA = """
local last = tonumber(ARGV[1])
for i = 4, #ARGV, 2 do
  local v = redis.call('INCR', KEYS[3])
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], v, ARGV[i])
end
if #ARGV > 3 then
  redis.call('ZADD', KEYS[5], redis.call('INCR', KEYS[4]), ARGV[3])
  for k = 1, 5 do redis.call('EXPIRE', KEYS[k], ARGV[2]) end
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


# KEYS: the feed's counter and sorted set. ARGV: since. Returns {counter, changed sessions...}.
_FEED_LUA = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[1])
if cur <= since then return {cur} end
local out = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf')
table.insert(out, 1, cur)
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


def _feed_keys() -> list[str]:
    """The change feed: a counter and a sorted set of session hex → feed version."""
    return [f"{_key_prefix()}:feed:v", f"{_key_prefix()}:feed:z"]


def _use_redis() -> bool:
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(getattr(settings, "REDIS_URL", "")) and "channels_redis" in backend


Exchange = tuple[int, dict[int, str]]  # the session's version, the poses changed since


class PoseStore(Protocol):
    async def changed_sessions(self, since: int) -> tuple[int, set[uuid.UUID] | None]:
        """The feed's version and the sessions changed after ``since``; None: all may have
        (the store was reset)."""
        ...

    async def exchange_many(
        self, batch: dict[uuid.UUID, tuple[dict[int, str], int]]
    ) -> dict[uuid.UUID, Exchange]:
        """Per session: write its pending poses, read what changed since its version."""
        ...

    async def remove(self, session_id: uuid.UUID, participant_id: int) -> None: ...

    async def aclose(self) -> None: ...


class LocalPoseStore:
    """One process, no Redis: the same versioned semantics over dicts."""

    def __init__(self) -> None:
        self._sessions: dict[uuid.UUID, tuple[list[int], dict[int, tuple[int, str]]]] = {}
        self._feed: dict[uuid.UUID, int] = {}
        self._feed_version = 0

    async def changed_sessions(self, since: int) -> tuple[int, set[uuid.UUID] | None]:
        if self._feed_version < since:
            return self._feed_version, None
        return self._feed_version, {sid for sid, v in self._feed.items() if v > since}

    async def exchange_many(
        self, batch: dict[uuid.UUID, tuple[dict[int, str], int]]
    ) -> dict[uuid.UUID, Exchange]:
        return {sid: self.exchange(sid, pending, since) for sid, (pending, since) in batch.items()}

    def exchange(self, session_id: uuid.UUID, pending: dict[int, str], since: int) -> Exchange:
        counter, poses = self._sessions.setdefault(session_id, ([0], {}))
        for pid, pose in pending.items():
            counter[0] += 1
            poses[pid] = (counter[0], pose)
        if pending:
            self._feed_version += 1
            self._feed[session_id] = self._feed_version
        if counter[0] < since:
            since = 0
        return counter[0], {pid: pose for pid, (v, pose) in poses.items() if v > since}

    async def remove(self, session_id: uuid.UUID, participant_id: int) -> None:
        entry = self._sessions.get(session_id)
        if entry is not None:
            entry[1].pop(participant_id, None)

    def forget(self, session_id: uuid.UUID) -> None:
        self._sessions.pop(session_id, None)
        self._feed.pop(session_id, None)

    async def aclose(self) -> None:
        return None


class RedisPoseStore:
    """Across processes: a hash, a sorted set of versions and a counter per session."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None
        self._script: Any = None
        self._feed_script: Any = None

    def _ensure(self) -> Any:
        if self._client is None:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self._url, decode_responses=True)
            self._script = self._client.register_script(_EXCHANGE_LUA)
            self._feed_script = self._client.register_script(_FEED_LUA)
        return self._script

    async def changed_sessions(self, since: int) -> tuple[int, set[uuid.UUID] | None]:
        self._ensure()
        # One command per tick, the counter alone while nothing changed (the common case).
        reply = await self._feed_script(keys=_feed_keys(), args=[since])
        version = int(reply[0])
        if version < since:
            return version, None
        return version, {uuid.UUID(hex=h) for h in reply[1:]}

    async def exchange_many(
        self, batch: dict[uuid.UUID, tuple[dict[int, str], int]]
    ) -> dict[uuid.UUID, Exchange]:
        script = self._ensure()
        feed = _feed_keys()
        order = list(batch)
        async with self._client.pipeline(transaction=False) as pipe:
            for sid in order:
                pending, since = batch[sid]
                args: list[Any] = [since, KEY_TTL_S, sid.hex]
                for pid, pose in pending.items():
                    args.append(pid)
                    args.append(pose)
                await script(keys=[*_keys(sid), *feed], args=args, client=pipe)
            replies = await pipe.execute()
        out: dict[uuid.UUID, Exchange] = {}
        for sid, reply in zip(order, replies, strict=True):
            out[sid] = int(reply[0]), {int(reply[i]): reply[i + 1] for i in range(1, len(reply), 2)}
        return out

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
        client.zrem(_feed_keys()[1], session_id.hex)
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
    """The members of one session connected to this process."""

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.members: dict[str, PoseMember | RemotePoseMember] = {}
        self.pending: dict[int, str] = {}
        self.version = 0
        self.tick = 0

    async def deliver(self, changed: dict[int, str]) -> None:
        """One message per local member with the others' changed poses."""
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
    """This event loop's rooms, pose store and ticker."""

    def __init__(self, store: PoseStore, tick_hz: int) -> None:
        self.store = store
        self.tick_hz = tick_hz
        self.rooms: dict[uuid.UUID, Room] = {}
        self.due: set[uuid.UUID] = set()  # rooms to exchange next tick: pending poses, new
        self.feed_version = 0
        self.task: asyncio.Task[None] | None = None
        self._snapshots: set[asyncio.Task[None]] = set()
        self._errors = 0

    def join(
        self, session_id: uuid.UUID, channel_name: str, member: PoseMember | RemotePoseMember
    ) -> None:
        room = self.rooms.get(session_id)
        if room is None:
            room = self.rooms[session_id] = Room(session_id)
            self.due.add(session_id)  # its first exchange reads the poses so far
        elif not hasattr(member, "participant_id"):  # a worker's relay (as deliver tells)
            # A worker joining a room that exists already gets only changes from here on: it
            # would never draw a participant holding still (a worker taking over a dead one's
            # stream drew no one who had not moved since). It gets the poses so far, alone.
            snapshot = asyncio.get_running_loop().create_task(
                self._snapshot(session_id, member)  # type: ignore[arg-type]
            )
            self._snapshots.add(snapshot)
            snapshot.add_done_callback(self._snapshots.discard)
        room.members[channel_name] = member
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.run())

    async def _snapshot(self, session_id: uuid.UUID, member: RemotePoseMember) -> None:
        try:
            _version, poses = (await self.store.exchange_many({session_id: ({}, 0)}))[session_id]
            if poses:
                await member.remote_poses(poses, time.time() * 1000.0)
        except Exception:
            logger.debug("could not send the poses so far", exc_info=True)

    def put(self, session_id: uuid.UUID, participant_id: int, pose_json: str) -> None:
        room = self.rooms.get(session_id)
        if room is not None:
            room.pending[participant_id] = pose_json
            self.due.add(session_id)

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
                self.due.discard(session_id)
        if gone:
            await self.store.remove(session_id, participant_id)
        if not self.rooms:
            # Nobody left on this loop: stop ticking, release the Redis connections (a later
            # join starts both again).
            task, self.task = self.task, None
            if task is not None and task is not asyncio.current_task():
                task.cancel()
            await self.store.aclose()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.tick_hz
        deadline = loop.time()
        while self.rooms:
            deadline += interval
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                deadline = loop.time()  # running late: skip ticks rather than burst
            try:
                await self.run_tick()
                self._errors = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                # Redis blips must not stop the ticker; log once per streak.
                self._errors += 1
                if self._errors == 1:
                    logger.exception("pose tick failed")
        if self.task is asyncio.current_task():
            self.task = None

    async def run_tick(self) -> None:
        self.feed_version, changed = await self.store.changed_sessions(self.feed_version)
        due = set(self.rooms) if changed is None else self.due | (changed & self.rooms.keys())
        self.due = set()
        if not due:
            return
        batch: dict[uuid.UUID, tuple[dict[int, str], int]] = {}
        for sid in due:
            room = self.rooms.get(sid)
            if room is not None:
                batch[sid] = room.pending, room.version
                room.pending = {}
        results = await self.store.exchange_many(batch)
        for sid, (version, poses) in results.items():
            room = self.rooms.get(sid)
            if room is None:
                continue
            room.version = version
            if poses:
                await room.deliver(poses)


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
