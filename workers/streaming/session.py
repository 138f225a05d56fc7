"""Latest pose per participant of one session, shared by that session's peers in-process, and
the session's scene clock (animated scenes: every viewer sees the same animation time).

Two kinds of participant: *local* ones, streamed by this worker (their peers put poses here
as they arrive), and *remote* ones, streamed by another worker or not streamed at all, whose
poses the platform sends at the session tick (``remote_poses``). Every peer draws everyone
but its own participant as avatars. Local poses go the other way: the worker sends those that
changed since the last tick to the platform (``poses``), so other workers can draw them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.protocol import Pose
from workers.streaming.voice import SessionVoice


class SessionPoses:
    """One per session, created by the worker and passed to each :class:`StreamPeer`.

    Not module-level state on purpose: two sessions on one worker must never see each
    other's participants. All access happens on the event loop thread, so no lock.
    """

    def __init__(
        self, *, remote_max_age_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._poses: dict[str, Pose] = {}
        self._remote: dict[str, tuple[Pose, float]] = {}  # pose, monotonic time received
        self._changed: set[str] = set()
        self.remote_max_age_s = remote_max_age_s
        self._clock = clock
        self._started = clock()
        self.clip = ""  # the animation clip everyone sees ("": the scene's default)
        self.voice = SessionVoice()  # the session's voices on this worker (voice.py)

    def scene_time(self) -> float:
        """Seconds since the session's first stream started on this worker, or since its clip
        last changed: the animation time all of its viewers render (the worker owns the clock,
        not the clients)."""
        return self._clock() - self._started

    def current_clip(self) -> str:
        return self.clip

    def set_clip(self, clip: str) -> None:
        """The host switched clips: everyone sees ``clip`` from its first frame, now. Setting
        the clip already playing changes nothing (a stream_start repeats the session's clip)."""
        if clip != self.clip:
            self.clip = clip
            self._started = self._clock()

    def update(self, participant_id: str, pose: Pose) -> None:
        self._poses[participant_id] = pose
        self._changed.add(participant_id)

    def remove(self, participant_id: str) -> None:
        self._poses.pop(participant_id, None)
        self._changed.discard(participant_id)

    def set_remote(self, poses: dict[str, Pose], *, now: float | None = None) -> None:
        """Poses the platform sent of participants this worker does not stream (a local one
        is never overwritten: this worker has its freshest pose)."""
        now = time.monotonic() if now is None else now
        for pid, pose in poses.items():
            if pid not in self._poses:
                self._remote[pid] = (pose, now)

    def take_changed(self) -> dict[str, Pose]:
        """Local poses that changed since the last call (what the worker sends each tick)."""
        changed = {pid: self._poses[pid] for pid in self._changed if pid in self._poses}
        self._changed.clear()
        return changed

    def others(self, participant_id: str, *, now: float | None = None) -> dict[str, Pose]:
        """Everyone's latest pose except ``participant_id``'s: the avatars to draw. A remote
        participant silent for ``remote_max_age_s`` has left (or its worker died): not drawn."""
        now = time.monotonic() if now is None else now
        out = {
            pid: pose
            for pid, (pose, at) in self._remote.items()
            if now - at <= self.remote_max_age_s and pid not in self._poses
        }
        out.update(self._poses)
        out.pop(participant_id, None)
        return out

    def __len__(self) -> int:
        """Local participants (the session's peers on this worker)."""
        return len(self._poses)
