"""The streaming worker process's platform client.

A worker is a *client* of the platform: it connects to ``/ws/morpheus/worker/`` with its
token (subprotocol ``bearer.<token>`` next to ``vrplatform.v1``), registers what it can do
(and the protocol versions it speaks),
heartbeats, and runs one :class:`StreamPeer` per ``stream_start`` it receives. Peers outlive
the control socket: after a reconnect the worker registers again with the streams it still
runs, so a short platform blip does not interrupt video.

Messages are those of :mod:`workers.protocol`. No Django here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import re
import signal
import socket
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from workers.protocol import (
    BEARER_PREFIX,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_VERSION,
    FRAME_STAGES,
    MAX_CONTROL_BYTES,
    MAX_STATS_BATCH,
    RUNGS,
    STATS_BATCH_VERSION,
    SUBPROTOCOL,
    SUPPORTED_VERSIONS,
    ClipChange,
    ErrorMessage,
    FrameMeta,
    Heartbeat,
    ProtocolError,
    QualityHint,
    QualityRequest,
    Register,
    Registered,
    RemotePoses,
    Signal,
    StatsBatch,
    StatsReport,
    StreamReport,
    StreamStart,
    StreamStop,
    StreamStopped,
    VoiceMute,
    WorkerMessage,
    WorkerPoses,
    encode_message,
    parse_from_platform,
)
from workers.streaming.encoder import NVENC, X264, EncoderChoice, probe_encoder, select_encoder
from workers.streaming.frames import FrameSource, PatternSource, RendererSource
from workers.streaming.peer import PeerRegistry, StreamConfig, StreamPeer
from workers.streaming.quality import QualityChange
from workers.streaming.session import SessionPoses

logger = logging.getLogger(__name__)

PATTERN_SCENE = "pattern:"
MAX_SCENE_BYTES = 1 << 30
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class FatalAgentError(RuntimeError):
    """The platform refused us for good (bad token, no common protocol version): retrying
    would not help."""


def parse_rung_sizes(text: str) -> dict[str, tuple[int, int]]:
    """``"320x180"`` (every rung) or ``"720p=640x360,1080p=960x540"`` (others default)."""
    sizes = dict(RUNGS)
    text = text.strip()
    if not text:
        return sizes

    def size(value: str) -> tuple[int, int]:
        w, h = (int(v) for v in value.lower().split("x"))
        if w < 192 or h < 16 or w % 4 or h % 2:
            raise ValueError(f"bad eye size {value!r} (width >= 192, multiple of 4; even height)")
        return w, h

    if "=" not in text:
        return {rung: size(text) for rung in RUNGS}
    for part in text.split(","):
        rung, _, value = part.partition("=")
        if rung.strip() not in RUNGS:
            raise ValueError(f"unknown rung {rung!r}")
        sizes[rung.strip()] = size(value.strip())
    return sizes


def ws_url(platform_url: str) -> str:
    parts = urlsplit(platform_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}/ws/morpheus/worker/"


@dataclass(slots=True)
class AgentConfig:
    platform_url: str
    token: str
    name: str = field(default_factory=socket.gethostname)
    max_streams: int = 4
    metrics_port: int = 0  # 0: no metrics endpoint
    heartbeat_s: float = 5.0
    stats_interval_s: float = 1.0
    nvenc_enabled: bool = True
    cache_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "vrplatform-scene-cache"
    )
    rung_sizes: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(RUNGS))
    max_fps: float | None = None  # caps the platform's target fps (tests, slow machines)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    encoder_threads: int = 0
    render_governor: bool = True  # scale the render size to hold the frame rate (governor.py)
    min_render_scale: float = 0.4
    # Cross-worker sessions: local poses go to the platform at this tick; a remote participant
    # not heard of for remote_pose_max_age_s is no longer drawn.
    pose_tick_s: float = 1.0 / 30.0
    remote_pose_max_age_s: float = 2.0
    # False where one process runs many agents (the worker simulator) and owns the signals.
    handle_signals: bool = True


class StreamMetrics:
    """Prometheus metrics of one worker, in the agent's own registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["stream_id"]
        self.streams = Gauge("morpheus_worker_streams", "Streams running", registry=self.registry)
        self.fps = Gauge(
            "morpheus_stream_fps", "Frames sent per second", labels, registry=self.registry
        )
        self.bitrate = Gauge(
            "morpheus_stream_bitrate_bps", "Video bitrate sent", labels, registry=self.registry
        )
        self.rung = Gauge(
            "morpheus_stream_rung_height",
            "Per-eye height of the current rung",
            labels,
            registry=self.registry,
        )
        self.stage = Gauge(
            "morpheus_stream_stage_ms",
            "p50 stage time of recent frames",
            [*labels, "stage"],
            registry=self.registry,
        )
        self.latency = Gauge(
            "morpheus_stream_latency_ms",
            "Pose received to frame sent, recent frames",
            [*labels, "quantile"],
            registry=self.registry,
        )
        self.frames = Counter("morpheus_frames", "Frames sent", registry=self.registry)
        self.pair = Gauge(
            "morpheus_stream_candidate_pair",
            "1 for the ICE candidate pair type a stream's media flows on (relay: through TURN)",
            [*labels, "type"],
            registry=self.registry,
        )
        self._pairs: dict[str, str] = {}

    def update(self, stream_id: str, report: StreamReport, sizes: Mapping[str, Any]) -> None:
        self.fps.labels(stream_id).set(report.fps)
        self.bitrate.labels(stream_id).set(report.bitrate_bps)
        if report.rung in sizes:
            self.rung.labels(stream_id).set(sizes[report.rung][1])
        for stage, values in report.stage_ms.items():
            self.stage.labels(stream_id, stage).set(values.p50)
        if report.latency_ms is not None:
            for q in ("p50", "p95", "p99"):
                self.latency.labels(stream_id, q).set(getattr(report.latency_ms, q))
        old = self._pairs.get(stream_id)
        if report.candidate_pair and report.candidate_pair != old:
            if old:
                self.pair.remove(stream_id, old)
            self._pairs[stream_id] = report.candidate_pair
            self.pair.labels(stream_id, report.candidate_pair).set(1)

    def forget(self, stream_id: str) -> None:
        for gauge in (self.fps, self.bitrate, self.rung):
            with contextlib.suppress(KeyError):
                gauge.remove(stream_id)
        for stage in FRAME_STAGES:
            with contextlib.suppress(KeyError):
                self.stage.remove(stream_id, stage)
        for q in ("p50", "p95", "p99"):
            with contextlib.suppress(KeyError):
                self.latency.remove(stream_id, q)
        pair = self._pairs.pop(stream_id, None)
        if pair:
            with contextlib.suppress(KeyError):
                self.pair.remove(stream_id, pair)


class WorkerAgent:
    """Connects, registers, heartbeats, runs streams; ``run()`` until ``stop()``."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.registry = PeerRegistry()
        self.metrics = StreamMetrics()
        self.encoder: EncoderChoice = EncoderChoice(X264, "not probed yet")
        self.renderer = "unknown"
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self._sessions: dict[str, SessionPoses] = {}
        self._streams: set[str] = set()  # stream ids started and not yet closed
        self._stopped_by_platform: set[str] = set()
        self._unsent: list[WorkerMessage] = []  # stream_stopped while disconnected
        # Stats reports since the last stats_batch, oldest first (protocol version 3).
        self._stats_pending: list[StatsReport] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.registered = asyncio.Event()
        self.protocol_version = 0  # negotiated at register

    # ------------------------------------------------------------------ capabilities

    def _probe(self) -> dict[str, Any]:
        self.encoder = select_encoder(nvenc_enabled=self.config.nvenc_enabled)
        encoders = [name for name in (NVENC, X264) if probe_encoder(name) is None]
        try:
            from workers.rendering.gl_context import renderer_info  # lazy: EGL is slow to load

            self.renderer = renderer_info()
        except Exception as exc:  # no EGL: pattern streams still work
            self.renderer = f"unavailable ({type(exc).__name__})"
        return {"encoders": encoders}

    def capabilities(self) -> dict[str, Any]:
        software = any(n in self.renderer.lower() for n in ("llvmpipe", "softpipe", "swrast"))
        return {
            "encoder": self.encoder.name,
            "encoder_reason": self.encoder.reason,
            "encoders": self._encoders,
            "renderer": self.renderer,
            "gpu": None if software or self.renderer.startswith("unavailable") else self.renderer,
            "max_streams": self.config.max_streams,
            "codecs": ["h264"],
            "rung_sizes": {k: list(v) for k, v in self.config.rung_sizes.items()},
            "active_streams": [sid for sid in self._streams if sid in self.registry],
            "pid": os.getpid(),
        }

    # ------------------------------------------------------------------ connection

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._encoders: list[str] = (await asyncio.to_thread(self._probe))["encoders"]
        logger.info(
            "worker %s: encoder %s (%s), renderer %s",
            self.config.name,
            self.encoder.name,
            self.encoder.reason,
            self.renderer,
        )
        if self.config.metrics_port:
            start_http_server(self.config.metrics_port, registry=self.metrics.registry)
        for sig in (signal.SIGTERM, signal.SIGINT) if self.config.handle_signals else ():
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        backoff = self.config.backoff_initial_s
        try:
            while not self._stopping.is_set():
                try:
                    await self._connection()
                    backoff = self.config.backoff_initial_s
                except FatalAgentError:
                    raise
                except (TimeoutError, OSError, ConnectionClosed, InvalidStatus) as exc:
                    logger.warning("platform connection lost: %s", exc)
                if self.registered.is_set():
                    backoff = self.config.backoff_initial_s
                self.registered.clear()
                if self._stopping.is_set():
                    break
                delay = backoff * (0.5 + random.random())  # noqa: S311 - jitter, not crypto
                logger.info("reconnecting in %.1f s", delay)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                backoff = min(backoff * 2, self.config.backoff_max_s)
        finally:
            await self.shutdown()

    def stop(self) -> None:
        """SIGTERM/SIGINT: close every peer, tell the platform (so it can move the streams),
        then close the control socket, which ends ``run()``."""
        if self._stopping.is_set():
            return
        logger.info("stopping: closing every stream")
        self._stopping.set()
        self._spawn(self.shutdown())

    async def shutdown(self) -> None:
        await self.registry.close_all()
        # Let the peers' "closed" handlers report stream_stopped before the socket goes.
        current = asyncio.current_task()
        pending = [t for t in self._tasks if t is not current]
        if pending:
            await asyncio.wait(pending, timeout=2.0)
        for task in pending:
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    async def _connection(self) -> None:
        async with connect(
            ws_url(self.config.platform_url),
            subprotocols=[
                Subprotocol(SUBPROTOCOL),
                Subprotocol(f"{BEARER_PREFIX}{self.config.token}"),
            ],
            max_size=MAX_CONTROL_BYTES,
            open_timeout=10,
        ) as ws:
            self._ws = ws
            await self.send(Register(self.config.name, self.capabilities(), SUPPORTED_VERSIONS))
            heartbeat = asyncio.ensure_future(self._heartbeats())
            poses = asyncio.ensure_future(self._pose_ticks())
            stats = asyncio.ensure_future(self._stats_ticks())
            try:
                async for raw in ws:
                    await self._handle(raw)
            finally:
                heartbeat.cancel()
                poses.cancel()
                stats.cancel()
                self._ws = None
            if ws.close_code == CLOSE_UNAUTHORIZED:
                raise FatalAgentError("the platform refused the worker token (4401)")
            if ws.close_code == CLOSE_UNSUPPORTED_VERSION:
                raise FatalAgentError(
                    f"the platform speaks none of protocol versions {SUPPORTED_VERSIONS} (4426)"
                )

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            load = len(self.registry) / max(self.config.max_streams, 1)
            await self.send(Heartbeat(self.config.name, len(self.registry), round(load, 3)))

    async def _stats_ticks(self) -> None:
        """One stats_batch a second carries every stream's reports (a platform at 10,000
        streams takes a message per worker per second, not one per stream)."""
        while True:
            await asyncio.sleep(self.config.stats_interval_s)
            await self.send_stats_batch()

    async def send_stats_batch(self) -> None:
        pending, self._stats_pending = self._stats_pending, []
        for i in range(0, len(pending), MAX_STATS_BATCH):
            await self.send(StatsBatch(pending[i : i + MAX_STATS_BATCH]))

    async def _pose_ticks(self) -> None:
        """Each tick, the poses of the participants this worker streams that changed, one
        message per session (the platform relays them to the session's other workers)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += self.config.pose_tick_s
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                deadline = loop.time()  # running late: skip ticks rather than burst
            await self.send_local_poses()

    async def send_local_poses(self) -> None:
        for session_id, session in list(self._sessions.items()):
            changed = session.take_changed()
            if changed:
                await self.send(WorkerPoses(session_id, changed))

    async def send(self, message: WorkerMessage) -> bool:
        ws = self._ws
        if ws is None:
            if isinstance(message, StreamStopped):
                self._unsent.append(message)
            return False
        try:
            await ws.send(encode_message(message))
        except ConnectionClosed:
            if isinstance(message, StreamStopped):
                self._unsent.append(message)
            return False
        return True

    # ------------------------------------------------------------------ commands

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = parse_from_platform(raw)
        except ProtocolError as exc:
            logger.warning("platform sent an invalid message: %s", exc)
            return
        if isinstance(message, Registered):
            self.protocol_version = message.version
            self.registered.set()
            unsent, self._unsent = self._unsent, []
            for pending in unsent:
                await self.send(pending)
            return
        if isinstance(message, ErrorMessage):
            logger.warning("platform error: %s %s", message.code, message.message)
            return
        try:
            if isinstance(message, StreamStart):
                self._spawn(self._start(message))
            elif isinstance(message, StreamStop):
                self._stopped_by_platform.add(message.stream_id)
                await self.registry.close(message.stream_id)
            elif isinstance(message, Signal):
                await self._signal(message)
            elif isinstance(message, QualityHint):
                peer = self.registry.get(message.stream_id)
                if peer is not None:
                    peer.forecast_cap(message.max_quality, hold_s=message.hold_s)
            elif isinstance(message, QualityRequest):
                self._quality(message)
            elif isinstance(message, RemotePoses):
                session = self._sessions.get(message.session_id)
                if session is not None:
                    session.set_remote(message.poses)
            elif isinstance(message, VoiceMute):
                # Kept even before the session's first stream here: a mute must not be lost.
                poses = self._sessions.setdefault(message.session_id, SessionPoses())
                poses.voice.set_muted(message.participant_id, message.muted)
            elif isinstance(message, ClipChange):
                session = self._sessions.get(message.session_id)
                if session is not None:  # no stream of it here yet: its stream_start says
                    session.set_clip(message.clip)
            else:
                logger.warning("unexpected message %s from the platform", message.type)
        except Exception:
            # One bad stream command must never take the worker down.
            logger.exception("handling %s failed", message.type)

    async def _signal(self, message: Signal) -> None:
        peer = self.registry.get(message.stream_id)
        if peer is None:
            logger.info("signal for unknown stream %s", message.stream_id)
            return
        try:
            if message.sdp is not None:
                await peer.set_answer(message.sdp)
            elif message.candidate is not None:
                await peer.add_candidate(message.candidate)
        except Exception as exc:  # malformed SDP/candidate from the client
            logger.warning("stream %s: bad signal from client: %s", message.stream_id, exc)

    def _quality(self, message: QualityRequest) -> None:
        peer = self.registry.get(message.stream_id)
        if peer is None:
            return
        if message.max_bitrate_kbps is not None:
            peer.encoder.config.max_bitrate = message.max_bitrate_kbps * 1000
        peer.set_quality(max_quality=message.max_quality, pinned_quality=message.pinned_quality)
        peer.encoder.set_bitrate(peer.quality.bitrate)

    async def _start(self, message: StreamStart) -> None:
        sid = message.stream_id
        if sid in self.registry:
            # Placed again on us (e.g. after a platform restart): start over with a new offer.
            self._stopped_by_platform.add(sid)
            await self.registry.close(sid)
        if len(self.registry) >= self.config.max_streams:
            await self.send(StreamStopped(sid, "failed: worker at capacity"))
            return
        opened = await self._open_peer(message)
        if opened is None:
            return
        peer, source = opened
        self._stopped_by_platform.discard(sid)
        self._streams.add(sid)
        self.registry.add(peer)
        peer.on("frame", lambda meta: self._on_frame(sid, meta))
        peer.on("stats", lambda report: self._spawn(self._on_stats(sid, report)))
        peer.on("quality_change", lambda change: self._on_quality_change(sid, change))
        peer.on("closed", lambda: self._spawn(self._on_closed(peer, source)))
        self.metrics.streams.set(len(self.registry))
        offer = await peer.create_offer()
        await self.send(Signal(sid, sdp=offer))
        logger.info(
            "stream %s started (%s, %.0f fps); offer sent",
            sid,
            message.quality,
            peer.config.target_fps,
        )

    async def _open_peer(
        self, message: StreamStart
    ) -> tuple[StreamPeer, FrameSource | None] | None:
        """The peer of a new stream and the frame source it draws from; None when the
        stream cannot start (the platform was told). The worker simulator
        (``workers/simulator``) overrides this one step to stream nothing."""
        sid = message.stream_id
        try:
            source = await self._source(message.scene_url, world_scale=message.world_scale)
        except Exception as exc:
            logger.exception("stream %s: scene unavailable", sid)
            await self.send(StreamStopped(sid, f"failed: scene unavailable ({exc})"[:256]))
            return None
        fps = float(message.target_fps)
        if self.config.max_fps:
            fps = min(fps, self.config.max_fps)
        config = StreamConfig.from_start(
            message,
            rung_sizes=dict(self.config.rung_sizes),
            stats_interval_s=self.config.stats_interval_s,
            encoder_threads=self.config.encoder_threads,
            render_governor=self.config.render_governor,
            min_render_scale=self.config.min_render_scale,
        )
        config.target_fps = fps
        poses = self._sessions.get(message.session_id)
        if poses is None:
            poses = self._sessions[message.session_id] = SessionPoses(
                remote_max_age_s=self.config.remote_pose_max_age_s
            )
        for participant_id in message.voice_muted:  # the operator's mutes, kept by the platform
            poses.voice.set_muted(participant_id, True)
        poses.set_clip(message.clip)  # the platform's record of the session's clip
        if isinstance(source, RendererSource):
            source.clock = poses.scene_time  # one animation clock and clip per session
            source.clip = poses.current_clip
        peer = StreamPeer(config, source, encoder_choice=self.encoder, session_poses=poses)
        return peer, source

    def _on_frame(self, sid: str, meta: FrameMeta) -> None:
        self.metrics.frames.inc()

    def _on_quality_change(self, sid: str, change: QualityChange) -> None:
        logger.info("stream %s rung %s -> %s (%s)", sid, change.old, change.new, change.reason)

    async def _on_stats(self, sid: str, report: StreamReport) -> None:
        self.metrics.update(sid, report, self.config.rung_sizes)
        if self.protocol_version >= STATS_BATCH_VERSION:
            if self._ws is not None:  # like a report sent while disconnected: dropped
                self._stats_pending.append(StatsReport(sid, report))
        else:  # a version-2 platform: one message per report
            await self.send(StatsReport(sid, report))

    async def _on_closed(self, peer: StreamPeer, source: FrameSource | None) -> None:
        sid = peer.stream_id
        # Decided before the first await: a fresh peer for the same stream (an ICE restart,
        # or placed here again) may be registered while the source closes.
        replaced = self.registry.get(sid) not in (None, peer)
        by_platform = sid in self._stopped_by_platform
        self._stopped_by_platform.discard(sid)
        if not replaced:
            self._streams.discard(sid)
            self.metrics.forget(sid)
            self.metrics.streams.set(len(self.registry))
            session = self._sessions.get(peer.config.session_id)
            if (
                session is not None
                and len(session) == 0
                and not any(
                    p.config.session_id == peer.config.session_id
                    for p in (self.registry.get(s) for s in list(self._streams))
                    if p is not None
                )
            ):
                self._sessions.pop(peer.config.session_id, None)
        close = getattr(source, "close", None)
        if close is not None:
            # The renderer's GL context belongs to the render thread's renderer; closing it
            # from a worker thread is safe (Renderer.current() makes it current there).
            await asyncio.to_thread(close)
        if replaced or by_platform:
            return  # the stream goes on (replaced), or the platform already knows
        await self.send_stats_batch()  # its last seconds, while the platform still takes them
        reason = (
            "worker_shutdown"
            if self._stopping.is_set()
            else f"connection {peer.pc.connectionState}"
        )
        await self.send(StreamStopped(sid, reason))

    # ------------------------------------------------------------------ scenes

    async def _source(self, scene_url: str, *, world_scale: float = 1.0) -> FrameSource:
        if scene_url == PATTERN_SCENE:
            return PatternSource()
        path = await asyncio.to_thread(self.fetch_scene, scene_url)
        return RendererSource(path, world_scale=world_scale)

    def fetch_scene(self, scene_url: str) -> Path:
        """Download a scene once per checksum into the cache dir; returns the local path."""
        import requests

        url = urljoin(self.config.platform_url.rstrip("/") + "/", scene_url.lstrip("/"))
        key = (parse_qs(urlsplit(url).query).get("sha256") or [""])[0]
        if not _SAFE_KEY.match(key):
            key = hashlib.sha256(url.encode()).hexdigest()
        cache = self.config.cache_dir
        cache.mkdir(parents=True, exist_ok=True)
        for existing in cache.glob(f"{key}.*"):
            if existing.suffix != ".part":
                return existing
        started = time.monotonic()
        with requests.get(
            url, headers={"Authorization": f"Worker {self.config.token}"}, stream=True, timeout=30
        ) as response:
            response.raise_for_status()
            name = response.headers.get("Content-Disposition", "")
            match = re.search(r'filename="?([^";]+)"?', name)
            suffix = Path(match.group(1)).suffix.lower() if match else ".glb"
            if suffix not in (".glb", ".gltf", ".zip"):
                suffix = ".glb"
            part = cache / f"{key}.{os.getpid()}.part"
            size = 0
            with part.open("wb") as out:
                for chunk in response.iter_content(1 << 20):
                    size += len(chunk)
                    if size > MAX_SCENE_BYTES:
                        part.unlink(missing_ok=True)
                        raise ValueError("scene file too large")
                    out.write(chunk)
        path = cache / f"{key}{suffix}"
        part.replace(path)  # atomic: a concurrent stream never sees half a file
        logger.info(
            "scene %s downloaded (%d bytes, %.1f s)", path.name, size, time.monotonic() - started
        )
        return path

    # ------------------------------------------------------------------ tasks

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
