"""Latest pose per participant of one session, shared by that session's peers in-process, and
the session's scene clock (animated scenes: every viewer sees the same animation time)."""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.protocol import Pose


class SessionPoses:
    """One per session, created by the worker and passed to each :class:`StreamPeer`.

    Not module-level state on purpose: two sessions on one worker must never see each
    other's participants. All access happens on the event loop thread, so no lock.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._poses: dict[str, Pose] = {}
        self._clock = clock
        self._started = clock()

    def scene_time(self) -> float:
        """Seconds since the session's first stream started on this worker: the animation time
        all of its viewers render (the worker owns the clock, not the clients)."""
        return self._clock() - self._started

    def update(self, participant_id: str, pose: Pose) -> None:
        self._poses[participant_id] = pose

    def remove(self, participant_id: str) -> None:
        self._poses.pop(participant_id, None)

    def others(self, participant_id: str) -> dict[str, Pose]:
        """Everyone's latest pose except ``participant_id``'s: the avatars to draw."""
        return {k: v for k, v in self._poses.items() if k != participant_id}

    def __len__(self) -> int:
        return len(self._poses)
