"""A synthetic headset's voice: a microphone that plays tone bursts on demand, and an ear
that notices when a tone arrives. Used by the voice tests and the mouth-to-ear benchmark
(benchmarks/bench_voice.py).

"Mouth" is the moment a burst's first frame leaves the microphone track for the encoder;
"ear" the moment its first decoded frame comes out of the receiving track (after aiortc's
jitter buffer). A real headset adds its capture and playout buffers on top; those are the
device's, not the platform's.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

SAMPLE_RATE = 48_000
FRAME = 960  # 20 ms
TONE_HZ = 1000.0
TONE_LEVEL = 0.3  # of full scale
HEARD_RMS = 0.05  # of full scale: well above Opus's noise on silence, below a burst


class ToneMic(MediaStreamTrack):
    """Silence, or a 1 kHz tone for ``burst()``'s duration. Paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._samples = 0
        self._start: float | None = None
        self._tone_left = 0
        self._pending: float | None = None  # burst asked, first frame not yet out
        self.bursts: list[float] = []  # wall-clock (time.time) of each burst's first frame

    def burst(self, seconds: float = 0.2) -> None:
        self._tone_left = int(seconds * SAMPLE_RATE)
        self._pending = time.time()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + self._samples / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        n = np.arange(self._samples, self._samples + FRAME)
        if self._tone_left > 0:
            pcm = TONE_LEVEL * np.sin(2 * math.pi * TONE_HZ * n / SAMPLE_RATE)
            self._tone_left -= FRAME
            if self._pending is not None:
                self.bursts.append(time.time())
                self._pending = None
        else:
            pcm = np.zeros(FRAME)
        frame = AudioFrame.from_ndarray(
            (pcm * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += FRAME
        return frame


def frame_rms(frame: AudioFrame) -> float:
    """RMS of a decoded frame, 0..1 of full scale (any layout: channels averaged)."""
    pcm = frame.to_ndarray().astype(np.float64) / 32768.0
    return float(np.sqrt(np.mean(pcm * pcm))) if pcm.size else 0.0


class Ear:
    """Reads one received audio track and records when a tone starts (rising past
    ``HEARD_RMS`` after at least 100 ms below it)."""

    def __init__(self, track: MediaStreamTrack, on_frame: Callable[[], None] | None = None):
        self.track = track
        self.onsets: list[float] = []
        self.frames = 0
        self.loud = 0
        self._on_frame = on_frame
        self._quiet = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            now = time.time()
            if not isinstance(frame, AudioFrame):
                continue
            self.frames += 1
            if frame_rms(frame) > HEARD_RMS:
                self.loud += 1
                if self._quiet >= 5:
                    self.onsets.append(now)
                self._quiet = 0
            else:
                self._quiet += 1
            if self._on_frame:
                self._on_frame()

    @property
    def quiet_frames(self) -> int:
        """Frames in a row below the tone level, up to now."""
        return self._quiet

    def stop(self) -> None:
        self.task.cancel()


async def answer_with_mic(
    pc: RTCPeerConnection, offer: dict[str, str], mic: MediaStreamTrack | None
) -> dict[str, str]:
    """Answer a worker's offer, sending ``mic`` on its microphone m-line (the first audio
    one), or nothing (``None``: a headset without a microphone)."""
    await pc.setRemoteDescription(RTCSessionDescription(**offer))
    audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
    if mic is not None and audio:
        audio[0].direction = "sendonly"
        audio[0].sender.replaceTrack(mic)
    await pc.setLocalDescription(await pc.createAnswer())
    return {"type": "answer", "sdp": pc.localDescription.sdp}


def audio_track_mids(pc: RTCPeerConnection) -> dict[Any, str]:
    """Received audio track -> the m-line mid it arrives on (the worker names voices by mid)."""
    return {
        t.receiver.track: t.mid
        for t in pc.getTransceivers()
        if t.kind == "audio" and t.receiver.track is not None and t.mid is not None
    }
