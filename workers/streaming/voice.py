"""Voice between the participants a worker streams: each client's microphone (Opus, on the
same RTCPeerConnection as its video) is forwarded to every other participant of the session.

Each peer offers one receive-only audio m-line (the client's microphone) and ``VOICE_SLOTS``
send-only ones. A slot carries one other speaker at a time, so the client can place each voice
at that speaker's avatar (Web Audio panner); the peer tells the client which participant each
slot (by its m-line ``mid``) carries. Slots never end, so that aiortc's sender (which stops
for good when its track ends) keeps running and a slot can pass to the next speaker without a
renegotiation. A slot with nobody on it sends nothing; one whose speaker an operator muted
plays silence.

Not yet: forwarding across workers (participants of one session on two workers do not hear
each other; the cross-worker pose path carries no media). A session is sticky to one worker
(DESIGN.md, Flows 3), so this only happens after a worker is lost mid-session.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

logger = logging.getLogger(__name__)

VOICE_SLOTS = 3
SAMPLE_RATE = 48_000
PTIME_S = 0.02
_SAMPLES = int(SAMPLE_RATE * PTIME_S)
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
BACKLOG = 4  # frames (80 ms) a listener may fall behind before the oldest are dropped


def silence(samples: int = _SAMPLES) -> AudioFrame:
    # The layout aiortc's Opus decoder gives speakers' frames: the sender's encoder keeps one
    # resampler per stream, and PyAV's refuses a frame whose format differs from the first.
    frame = AudioFrame(format="s16", layout="stereo", samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = SAMPLE_RATE
    return frame


class VoiceSlotTrack(MediaStreamTrack):
    """One outgoing voice: the current speaker's relayed microphone, or silence.

    Timestamps are our own, continuous across speaker changes; an unassigned slot sends
    nothing. Speakers' frames are 20 ms
    (the browser's and aiortc's Opus packet time).
    """

    kind = "audio"

    def __init__(self, muted: Callable[[str], bool]) -> None:
        super().__init__()
        self.mid: str | None = None
        self.speaker: str | None = None
        self._source: asyncio.Queue[AudioFrame | None] | None = None
        self._muted = muted
        self._assigned = asyncio.Event()
        self._samples = 0
        self._start: float | None = None
        self.forwarded = 0  # speaker frames passed on
        self.dropped_muted = 0  # speaker frames dropped because an operator muted them

    def assign(self, speaker: str | None, source: asyncio.Queue[AudioFrame | None] | None) -> None:
        self.speaker, self._source = speaker, source
        if source is None:
            self._assigned.clear()
        else:
            self._assigned.set()

    def _next_speaker_frame(self) -> AudioFrame | None:
        source = self._source
        if source is None:
            return None
        # Jitter: keep up to two frames in hand; more is delay we would never make up.
        while source.qsize() > 2:
            source.get_nowait()
        try:
            frame = source.get_nowait()
        except asyncio.QueueEmpty:
            return None  # the speaker is late or quiet on the wire: 20 ms of silence
        if frame is None:  # the speaker's track ended; the hub reassigns the slot
            if self._source is source:
                self.assign(None, None)
            return None
        if self.speaker is not None and self._muted(self.speaker):
            self.dropped_muted += 1
            return None
        if (
            frame.format.name != "s16"
            or frame.layout.name != "stereo"
            or frame.sample_rate != SAMPLE_RATE
        ):
            return None  # not what the decoder makes; never hand the encoder a second format
        return frame

    async def recv(self) -> AudioFrame:
        """Exactly 20 ms of audio per 20 ms of wall clock: a listener's jitter buffer sees a
        steady stream whether or not anyone speaks (more audio than time would pile up as
        delay in the listener's browser)."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._source is None:
            # Nobody on this slot: send nothing (no silent Opus stream per idle slot), and
            # pick the clock up again, RTP time included, when someone is assigned.
            await self._assigned.wait()
            if self._start is not None:
                idle = time.monotonic() - (self._start + self._samples / SAMPLE_RATE)
                self._samples += max(0, int(idle / PTIME_S)) * _SAMPLES
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._samples / SAMPLE_RATE
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.2:
            self._start -= wait  # the loop stalled or we idled: resume from now, no burst
        frame = self._next_speaker_frame()
        if frame is None:
            frame = silence()
        else:
            self.forwarded += 1
        frame.pts = self._samples
        frame.time_base = _TIME_BASE
        self._samples += _SAMPLES
        return frame

    def stop(self) -> None:
        self.assign(None, None)
        super().stop()


# Tells a listener's client about voices: {"slots": {mid: speaker}} or {"muted_by_operator": b}.
Notify = Callable[[dict[str, Any]], None]


class SessionVoice:
    """Who speaks and who listens in one session on this worker; slot assignment and the
    operator's mutes. One per session (kept beside its poses), used on the event loop only."""

    def __init__(self) -> None:
        self._speakers: dict[str, MediaStreamTrack] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._queues: dict[str, list[asyncio.Queue[AudioFrame | None]]] = {}
        self._listeners: dict[str, tuple[list[VoiceSlotTrack], Notify]] = {}
        self.muted: set[str] = set()

    def is_muted(self, participant_id: str) -> bool:
        return participant_id in self.muted

    def new_slot(self) -> VoiceSlotTrack:
        return VoiceSlotTrack(self.is_muted)

    def set_muted(self, participant_id: str, muted: bool) -> None:
        """An operator's mute: the participant's audio is dropped at the worker (not only
        silenced in their own browser, which they control)."""
        if muted:
            self.muted.add(participant_id)
        else:
            self.muted.discard(participant_id)
        # They are told (their page says so), or they would talk on into the void.
        entry = self._listeners.get(participant_id)
        if entry is not None:
            entry[1]({"muted_by_operator": muted})

    def add_speaker(self, participant_id: str, track: MediaStreamTrack) -> None:
        self.remove_speaker(participant_id)
        self._speakers[participant_id] = track
        self._queues[participant_id] = []
        self._readers[participant_id] = asyncio.ensure_future(self._read(participant_id, track))
        for listener in self._listeners:
            if listener != participant_id:
                self._assign(listener, participant_id)

    async def _read(self, participant_id: str, track: MediaStreamTrack) -> None:
        """Fan one microphone out to the slots that carry it; a slow listener loses its
        oldest frames, never delays the others."""
        while True:
            try:
                frame: AudioFrame | None = await track.recv()  # type: ignore[assignment]
            except MediaStreamError:
                frame = None
            for queue in self._queues.get(participant_id, []):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(frame)
            if frame is None:
                return

    def remove_speaker(self, participant_id: str) -> None:
        reader = self._readers.pop(participant_id, None)
        if reader is not None:
            reader.cancel()
        self._queues.pop(participant_id, None)
        if self._speakers.pop(participant_id, None) is None:
            return
        for listener, (slots, _) in self._listeners.items():
            for slot in slots:
                if slot.speaker == participant_id:
                    slot.assign(None, None)
            self._notify(listener)
            self._fill(listener)

    def add_listener(
        self, participant_id: str, slots: list[VoiceSlotTrack], notify: Notify
    ) -> None:
        self._listeners[participant_id] = (slots, notify)
        self._fill(participant_id)
        self._notify(participant_id)
        if participant_id in self.muted:
            notify({"muted_by_operator": True})

    def remove_listener(self, participant_id: str) -> None:
        entry = self._listeners.pop(participant_id, None)
        if entry is not None:
            for slot in entry[0]:
                queue = slot._source
                for queues in self._queues.values():
                    if queue in queues:
                        queues.remove(queue)
                slot.assign(None, None)

    def slots_of(self, participant_id: str) -> dict[str, str | None]:
        entry = self._listeners.get(participant_id)
        if entry is None:
            return {}
        return {slot.mid: slot.speaker for slot in entry[0] if slot.mid is not None}

    def _fill(self, listener: str) -> None:
        for speaker in self._speakers:
            if speaker != listener:
                self._assign(listener, speaker)

    def _assign(self, listener: str, speaker: str) -> None:
        slots, _ = self._listeners[listener]
        if any(slot.speaker == speaker for slot in slots):
            return
        free = next((slot for slot in slots if slot.speaker is None), None)
        if free is None:
            logger.info("no free voice slot for %s at %s", speaker, listener)
            return
        queue: asyncio.Queue[AudioFrame | None] = asyncio.Queue(BACKLOG)
        self._queues[speaker].append(queue)
        free.assign(speaker, queue)
        self._notify(listener)

    def _notify(self, listener: str) -> None:
        entry = self._listeners.get(listener)
        if entry is not None:
            entry[1]({"slots": self.slots_of(listener)})
