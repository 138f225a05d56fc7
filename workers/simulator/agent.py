"""A streaming worker that speaks the real protocol and streams nothing.

:class:`SimulatedAgent` *is* the real worker's platform client (``WorkerAgent``): the same
socket, token, register, heartbeats, reconnects, command handling and stats messages. It
replaces one step, opening a stream's peer (``WorkerAgent._open_peer``), with a
:class:`SimulatedPeer` that makes no ``RTCPeerConnection``, renders and encodes nothing, sends
a placeholder SDP offer, keeps the client's answer and candidates, and reports a plausible
:class:`~workers.protocol.StreamReport` once per ``stats_interval_s``, the real format.
Many agents run in one event loop (``workers/simulator/fleet.py``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

from pyee.asyncio import AsyncIOEventEmitter

from workers.protocol import (
    FRAME_STAGES,
    Percentiles,
    QualityRequest,
    StreamReport,
    StreamStart,
    scaled_bitrate,
)
from workers.streaming.agent import AgentConfig, WorkerAgent
from workers.streaming.encoder import X264, EncoderChoice
from workers.streaming.frames import FrameSource
from workers.streaming.peer import StreamConfig, StreamPeer

logger = logging.getLogger(__name__)

SIMULATED_RENDERER = "unavailable (simulated worker)"  # "unavailable": no GPU claimed
# Stage times (ms) of a plausible 1080p stream on a GPU worker; each report jitters them.
_jitter = random.Random()  # noqa: S311 - made-up figures, not secrets
_STAGE_MS = {"queue": 1.0, "render": 4.0, "convert": 1.5, "encode": 5.0, "send": 0.5}


class SimulatedConnection:
    """What the agent reads of a peer's ``RTCPeerConnection``: its state, for the reason it
    gives the platform when a stream closes on its own."""

    def __init__(self) -> None:
        self.connectionState = "new"  # aiortc's name


class SimulatedPeer(AsyncIOEventEmitter):  # type: ignore[misc]
    """One stream without media. Emits ``stats`` (StreamReport) every ``stats_interval_s``
    from its offer on, and ``closed`` once on :meth:`close`, as ``StreamPeer`` does."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.config = config
        self.pc = SimulatedConnection()
        self.answer: Mapping[str, str] | None = None
        self.candidates: list[Mapping[str, Any]] = []
        self.limits: dict[str, str | None] = {
            "max_quality": config.max_quality,
            "pinned_quality": config.pinned_quality,
        }
        self.reports = 0
        self._frames = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def stream_id(self) -> str:
        return self.config.stream_id

    async def create_offer(self) -> dict[str, str]:
        self._task = asyncio.ensure_future(self._stats_loop())
        sdp = f"v=0\r\no=- {_jitter.getrandbits(62)} 1 IN IP4 127.0.0.1\r\ns=simulated\r\nt=0 0\r\n"
        return {"type": "offer", "sdp": sdp}

    async def set_answer(self, answer: Mapping[str, str]) -> None:
        self.answer = answer
        self.pc.connectionState = "connected"

    async def add_candidate(self, candidate: Mapping[str, Any]) -> None:
        self.candidates.append(candidate)

    def forecast_cap(self, rung: str, *, hold_s: float) -> None:
        self.limits["forecast"] = rung

    def set_quality(self, *, max_quality: str | None, pinned_quality: str | None) -> None:
        self.limits.update(max_quality=max_quality, pinned_quality=pinned_quality)

    async def close(self) -> None:
        """Idempotent, like ``StreamPeer.close``."""
        if self._closed:
            return
        self._closed = True
        self.pc.connectionState = "closed"
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self.emit("closed")

    def report(self) -> StreamReport:
        """This second's report: the stream's rung at its frame rate, a little jitter."""
        rung = self.limits["pinned_quality"] or self.config.quality
        fps = self.config.target_fps * _jitter.uniform(0.97, 1.0)
        self._frames += round(fps * self.config.stats_interval_s)
        stages = {
            stage: Percentiles(ms, ms * 1.3, ms * 1.8)
            for stage, ms in ((s, _STAGE_MS[s] * _jitter.uniform(0.8, 1.2)) for s in FRAME_STAGES)
        }
        latency = sum(p.p50 for p in stages.values())
        bitrate = scaled_bitrate(rung, self.config.target_fps)
        return StreamReport(
            t=time.time() * 1000.0,
            rung=rung,
            fps=round(fps, 2),
            target_fps=self.config.target_fps,
            frames_sent=self._frames,
            bitrate_bps=int(bitrate * _jitter.uniform(0.9, 1.0)),
            target_bitrate_bps=bitrate,
            loss=0.0,
            rtt_ms=round(_jitter.uniform(8.0, 25.0), 1),
            jitter_ms=round(_jitter.uniform(0.5, 3.0), 2),
            size=self.config.stereo_size(rung),
            paced_fps=self.config.target_fps,
            encoder=X264,
            encoder_reason="simulated",
            keyframes=1 + self._frames // 900,
            stage_ms=stages,
            latency_ms=Percentiles(latency, latency * 1.3, latency * 1.8),
            candidate_pair="host" if self.answer is not None else "",
        )

    async def _stats_loop(self) -> None:
        # A random phase per stream: a fleet's reports spread over the second, as real
        # streams' do, instead of arriving in one burst.
        interval = self.config.stats_interval_s
        await asyncio.sleep(_jitter.uniform(0.0, interval))
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while not self._closed:
            self.reports += 1
            self.emit("stats", self.report())
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - loop.time()))


class SimulatedAgent(WorkerAgent):
    """The real ``WorkerAgent`` with simulated peers; ``kill()`` drops it like a crash.

    ``on_placed(stream_id, agent)`` is called as each ``stream_start`` arrives (the fleet
    measures placement latency and failover from it)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        on_placed: Callable[[str, SimulatedAgent], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.on_placed = on_placed
        self.peers: dict[str, SimulatedPeer] = {}  # every peer opened, closed ones too

    def _probe(self) -> dict[str, Any]:
        self.encoder = EncoderChoice(X264, "simulated: nothing is encoded")
        self.renderer = SIMULATED_RENDERER
        return {"encoders": [X264]}

    async def _open_peer(
        self, message: StreamStart
    ) -> tuple[StreamPeer, FrameSource | None] | None:
        if self.on_placed is not None:
            self.on_placed(message.stream_id, self)
        config = StreamConfig.from_start(
            message,
            rung_sizes=dict(self.config.rung_sizes),
            stats_interval_s=self.config.stats_interval_s,
        )
        peer = self.peers[message.stream_id] = SimulatedPeer(config)
        # The agent uses of a peer only what SimulatedPeer has (signalling, quality, events,
        # close, the connection's state); StreamPeer is the type its registry names.
        return cast(StreamPeer, peer), None

    def _quality(self, message: QualityRequest) -> None:
        peer = self.peers.get(message.stream_id)
        if peer is not None:
            peer.set_quality(max_quality=message.max_quality, pinned_quality=message.pinned_quality)

    def kill(self) -> None:
        """Vanish like a crashed process: the socket drops without a close handshake, no
        ``stream_stopped`` is sent and no reconnect follows."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            ws.transport.abort()

    @property
    def streams(self) -> int:
        return len(self.registry)
