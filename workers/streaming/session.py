"""Latest pose per participant of one session, shared by that session's peers in-process."""

from __future__ import annotations

from workers.protocol import Pose
from workers.streaming.voice import SessionVoice


class SessionPoses:
    """One per session, created by the worker and passed to each :class:`StreamPeer`.

    Not module-level state on purpose: two sessions on one worker must never see each
    other's participants. All access happens on the event loop thread, so no lock.
    """

    def __init__(self) -> None:
        self._poses: dict[str, Pose] = {}
        self.voice = SessionVoice()  # the session's voices on this worker (voice.py)

    def update(self, participant_id: str, pose: Pose) -> None:
        self._poses[participant_id] = pose

    def remove(self, participant_id: str) -> None:
        self._poses.pop(participant_id, None)

    def others(self, participant_id: str) -> dict[str, Pose]:
        """Everyone's latest pose except ``participant_id``'s: the avatars to draw."""
        return {k: v for k, v in self._poses.items() if k != participant_id}

    def __len__(self) -> int:
        return len(self._poses)
