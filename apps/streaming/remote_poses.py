"""Cross-worker sessions: the poses a streaming worker exchanges with the platform.

A worker draws every participant of a session as an avatar. Those it streams it knows
in-process; the others (streamed by another worker, or not streamed: spectators, browser
clients) reach it through the session's pose room (``apps.sessions.poses``), the same snapshot
hub that serves the session sockets:

- the worker sends its streamed participants' changed poses at its tick (``poses``); the
  relay puts them in the room, as a session socket puts its own pose;
- each room tick, the relay gets the poses that changed and sends the worker those of the
  participants it does not stream (``remote_poses``): one message per worker per session per
  tick, O(N) poses, never one message per pose.

One relay per worker control socket. It knows which participants the worker streams from the
commands the platform sends it (``stream_start``/``stream_stop``), the worker's own
``stream_stopped``, and on register the streams placed on it; a worker can only publish the
poses of participants it streams.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable

from apps.sessions.consumers import pose_json
from apps.sessions.poses import PoseHub, pose_hub
from workers.protocol import WorkerPoses

logger = logging.getLogger(__name__)


class _SessionMember:
    """The worker as a member of one session's pose room."""

    def __init__(self, relay: WorkerPoseRelay, session_id: uuid.UUID) -> None:
        self.relay = relay
        self.session_id = session_id
        self.local: set[int] = set()

    async def remote_poses(self, changed: dict[int, str], server_time: float) -> None:
        body = ",".join(f'"{pid}":{pose}' for pid, pose in changed.items() if pid not in self.local)
        if not body:
            return
        await self.relay.send(
            f'{{"type":"remote_poses","session_id":"{self.session_id}",'
            f'"t":{server_time:.1f},"poses":{{{body}}}}}'
        )


class WorkerPoseRelay:
    def __init__(self, channel_name: str, send: Callable[[str], Awaitable[None]]) -> None:
        self.key = f"{channel_name}#worker"  # the room's member key for this worker
        self.send = send
        self._members: dict[uuid.UUID, _SessionMember] = {}
        self._streams: dict[str, tuple[uuid.UUID, int]] = {}  # stream id -> session, participant
        self._hub: PoseHub | None = None

    def _room_hub(self) -> PoseHub:
        if self._hub is None:
            self._hub = pose_hub()
        return self._hub

    def streaming(self, stream_id: str, session_id: str, participant_id: str) -> None:
        """The worker streams ``participant_id`` in ``session_id`` (a stream_start)."""
        try:
            sid, pid = uuid.UUID(session_id), int(participant_id)
        except ValueError:
            return  # a stream without a participant (tests): nothing to relay
        self._streams[stream_id] = (sid, pid)
        member = self._members.get(sid)
        if member is None:
            member = self._members[sid] = _SessionMember(self, sid)
            self._room_hub().join(sid, self.key, member)
        member.local.add(pid)

    def streams(self, rows: Iterable[tuple[str, str, str]]) -> None:
        for stream_id, session_id, participant_id in rows:
            self.streaming(stream_id, session_id, participant_id)

    async def stopped(self, stream_id: str) -> None:
        """The stream ended or moved away (stream_stop, stream_stopped)."""
        entry = self._streams.pop(stream_id, None)
        if entry is None:
            return
        sid, pid = entry
        member = self._members.get(sid)
        if member is None:
            return
        if not any(s == sid and p == pid for s, p in self._streams.values()):
            member.local.discard(pid)
        if not member.local:
            del self._members[sid]
            await self._room_hub().leave(sid, self.key, -1, gone=False)

    def publish(self, message: WorkerPoses) -> int:
        """The worker's streamed participants' poses into the session's room; returns how
        many were taken (poses of participants it does not stream are dropped)."""
        try:
            sid = uuid.UUID(message.session_id)
        except ValueError:
            return 0
        member = self._members.get(sid)
        if member is None:
            return 0
        hub = self._room_hub()
        taken = 0
        for key, pose in message.poses.items():
            pid = int(key) if key.isdigit() else -1
            if pid in member.local:
                hub.put(sid, pid, pose_json(pose))
                taken += 1
        return taken

    async def close(self) -> None:
        for sid in list(self._members):
            del self._members[sid]
            await self._room_hub().leave(sid, self.key, -1, gone=False)
        self._streams.clear()
