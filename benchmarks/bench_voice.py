"""Mouth-to-ear latency of voice through a streaming worker (issue 16).

Two synthetic headsets (workers/headset/voice.py: a microphone that plays 1 kHz tone bursts,
an ear that notes when a tone arrives) join one session on a StreamPeer each, as the worker's
agent would set them up (shared SessionPoses, real RTCPeerConnections over loopback, Opus both
ways, the worker forwarding each voice on a slot). Each headset in turn plays a 200 ms burst;
the latency is the time from the burst's first frame leaving the speaker's microphone track to
its first decoded frame out of the listener's track. The worker and both headsets run in this
one process (asyncio, one core's worth), with the video of each stream kept tiny and slow so
that the audio path is what is measured.

    .venv/bin/python benchmarks/bench_voice.py --bursts 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

from workers.headset.voice import Ear, ToneMic, answer_with_mic, audio_track_mids
from workers.protocol import RUNGS
from workers.streaming.encoder import X264, EncoderChoice
from workers.streaming.frames import PatternSource
from workers.streaming.peer import StreamConfig, StreamPeer
from workers.streaming.session import SessionPoses

TINY = {rung: (192, 108) for rung in RUNGS}


class Headset:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mic = ToneMic()
        self.pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.slots: dict[str, Any] = {}
        self.ears: dict[str, Ear] = {}
        self.peer: StreamPeer | None = None
        self.changed = asyncio.Event()  # set on every heard frame and voice message

        @self.pc.on("track")
        def on_track(track: Any) -> None:
            mid = audio_track_mids(self.pc).get(track)
            if track.kind == "audio" and mid is not None:
                self.ears[mid] = Ear(track, on_frame=self.changed.set)

        @self.pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            if channel.label == "events":
                channel.on("message", self._on_event)

    def _on_event(self, message: str) -> None:
        voice = json.loads(message).get("voice") or {}
        if "slots" in voice:
            self.slots = voice["slots"]
            self.changed.set()

    async def until(self, check: Any, seconds: float) -> bool:
        """Wait (on events, not polling) until ``check()``; False after ``seconds``."""
        try:
            async with asyncio.timeout(seconds):
                while not check():
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    def ear_for(self, speaker: str) -> Ear | None:
        mid = next((m for m, s in self.slots.items() if s == speaker), None)
        return self.ears.get(mid) if mid else None


async def join(poses: SessionPoses, name: str, stream_fps: float) -> Headset:
    headset = Headset(name)
    config = StreamConfig(
        stream_id=f"s-{name}",
        session_id="bench",
        participant_id=name,
        rung_sizes=TINY,
        quality="720p",
        target_fps=stream_fps,
    )
    peer = StreamPeer(
        config, PatternSource(), encoder_choice=EncoderChoice(X264, "bench"), session_poses=poses
    )
    headset.peer = peer
    offer = await peer.create_offer()
    await peer.set_answer(await answer_with_mic(headset.pc, offer, headset.mic))
    return headset


async def one_burst(speaker: Headset, listener: Headset) -> float | None:
    ear = listener.ear_for(speaker.name)
    if ear is None:
        return None
    before = len(ear.onsets)
    speaker.mic.burst(0.2)
    if not await listener.until(lambda: len(ear.onsets) > before, 5.0):
        return None
    return (ear.onsets[before] - speaker.mic.bursts[-1]) * 1000.0


async def main(args: argparse.Namespace) -> None:
    poses = SessionPoses()
    a = await join(poses, "a", args.stream_fps)
    b = await join(poses, "b", args.stream_fps)
    await a.until(lambda: a.ear_for("b") is not None, 20)
    await b.until(lambda: b.ear_for("a") is not None, 20)
    await asyncio.sleep(1.0)  # let jitter buffers settle
    latencies: dict[str, list[float]] = {"a->b": [], "b->a": []}
    missed = 0
    for i in range(args.bursts):
        speaker, listener = (a, b) if i % 2 == 0 else (b, a)
        ms = await one_burst(speaker, listener)
        if ms is None:
            missed += 1
        else:
            latencies[f"{speaker.name}->{listener.name}"].append(ms)
        await asyncio.sleep(args.gap)
    every = latencies["a->b"] + latencies["b->a"]
    result = {
        "bursts": args.bursts,
        "heard": len(every),
        "missed": missed,
        "p50_ms": round(statistics.median(every), 1) if every else None,
        "p90_ms": round(sorted(every)[int(0.9 * (len(every) - 1))], 1) if every else None,
        "min_ms": round(min(every), 1) if every else None,
        "per_direction_p50_ms": {
            k: round(statistics.median(v), 1) if v else None for k, v in latencies.items()
        },
    }
    print(json.dumps(result, indent=2))
    for h in (a, b):
        for ear in h.ears.values():
            ear.stop()
        if h.peer is not None:
            await h.peer.close()
        await h.pc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--gap", type=float, default=0.6, help="seconds between bursts")
    parser.add_argument("--stream-fps", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
