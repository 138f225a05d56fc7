"""The synthetic headset: a real client of the platform's REST API, session WebSocket and
WebRTC streams, measuring what a headset would see.

Flow: ``POST /api/athena/authenticate`` -> create (``/api/hermes/session_create``) or join
(``/api/hermes/sessions/<id>/join``) a session -> session WebSocket with the token as the
``bearer.<token>`` subprotocol -> ``hermes:session_join`` -> ``POST /api/morpheus/render_start``
-> answer each ``morpheus:render_started`` offer with an aiortc ``RTCPeerConnection`` ->
poses along :func:`workers.headset.path.head_pose` at ``fps`` on the ``pose`` data channel ->
decode frames, read each frame's stamped id and match it with the worker's frame metadata.

Latency is measured on the headset's own clock only: pose sent -> frame carrying that pose
decoded. Worker stage times come from the frame metadata (the worker's wall clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import numpy as np
import requests
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from workers.headset.path import head_pose
from workers.protocol import BEARER_PREFIX, SESSION_HEARTBEAT_S, SUBPROTOCOL, frame_stages
from workers.protocol import percentiles as shared_percentiles
from workers.streaming.frames import ID_MODULO, read_frame_id
from workers.streaming.ice import ice_servers

logger = logging.getLogger(__name__)

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


# Renew TURN credentials this long before they expire (as static/client/js/stream.js does).
ICE_RENEW_BEFORE_S = 300


class HeadsetError(RuntimeError):
    pass


def _ms() -> float:
    return time.time() * 1000.0


def percentiles(values: list[float]) -> dict[str, float] | None:
    """p50/p95/p99 (the shared definition, :mod:`workers.protocol.stats`) as the summary line
    carries them: a dict to 2 decimals; None when empty."""
    if not values:
        return None
    return asdict(shared_percentiles(values, digits=2))


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


@dataclass
class HeadsetOptions:
    platform_url: str
    username: str
    password: str
    session_id: str | None = None
    scene_version: str | None = None
    # With no scene_version: stream the first published scene (the demo scene after `make
    # run`) instead of the worker's scene-less pattern source.
    published_scene: bool = False
    seconds: float = 10.0
    fps: float = 90.0
    quality: str | None = None
    stop_stream: bool = True  # render_stop at the end
    start_timeout_s: float = 60.0
    # Written (with the stream id) once the first frame decodes: lets a driver in another
    # process (e.g. one impairing the link) start its clock at the first picture.
    ready_file: Path | None = None
    # Head motion: position and quaternion at t seconds (a constant pose holds the head still).
    pose_at: Callable[[float], tuple[Vec3, Quat]] = head_pose
    keep_picture: bool = False  # keep the latest decoded luma plane in ``picture``
    # TURN transport to use first ("tcp" where UDP is blocked): aiortc uses one TURN URL only.
    turn_transport: str | None = None
    # "relay" forces this client through the TURN relay whatever the platform's policy
    # (benchmarks: relayed vs direct in one run); None follows the platform.
    ice_transport_policy: str | None = None
    # No frame for this long after the first: ask the platform for an ICE restart (the media
    # path is lost), again every ice_restart_retry_s until frames flow. 0: never.
    ice_restart_after_s: float = 2.0
    ice_restart_retry_s: float = 4.0


@dataclass
class FrameRecord:
    placement: int
    frame_id: int
    decoded_ms: float
    width: int
    height: int
    pose_seq: int | None = None
    latency_ms: float | None = None
    stages: dict[str, float] | None = None
    rung: str | None = None


@dataclass
class Connection:
    """One answered offer: a peer connection and what arrived on it."""

    placement: int
    stream_id: str
    pc: RTCPeerConnection
    metas: dict[int, dict[str, Any]] = field(default_factory=dict)
    pose_channel: Any = None
    frames_channel: Any = None
    channels_open: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    bytes_received: int = 0


class SyntheticHeadset:
    def __init__(self, options: HeadsetOptions) -> None:
        self.options = options
        self.base = options.platform_url.rstrip("/")
        self.access = ""
        self.refresh = ""  # the sign-in's refresh token (to sign out: POST /api/athena/logout)
        self.session_id = options.session_id or ""
        self.stream_id = ""
        self.ws: ClientConnection | None = None
        self.events: list[dict[str, Any]] = []  # server events with arrival time
        self.render_started = asyncio.Event()
        self.render_started_count = 0
        self.conn: Connection | None = None
        self.frames: list[FrameRecord] = []
        self.pose_sent: dict[int, float] = {}
        self.seq = 0
        self.rung_changes: list[dict[str, Any]] = []
        self._last_rung: str | None = None
        self._event_waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._old: list[Connection] = []
        self.first_frame_at: float | None = None
        self.started_at = 0.0
        self._frame_event = asyncio.Event()
        self.picture: np.ndarray[Any, np.dtype[np.uint8]] | None = None
        self.participant_id: int | None = None
        self.ice_restarts = 0  # asked for
        self.ice: dict[str, Any] = {}  # the platform's ICE configuration of the last offer
        self._last_frame_at = 0.0  # loop time
        self._renew_before_s = float(ICE_RENEW_BEFORE_S)

    # ------------------------------------------------------------------ HTTP

    async def http(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.access:
            headers["Authorization"] = f"Bearer {self.access}"
        return await asyncio.to_thread(
            requests.request, method, self.base + path, headers=headers, timeout=30, **kwargs
        )

    async def login(self) -> None:
        r = await self.http(
            "POST",
            "/api/athena/authenticate",
            json={"username": self.options.username, "password": self.options.password},
        )
        if r.status_code != 200:
            raise HeadsetError(f"login failed: {r.status_code} {r.text[:200]}")
        self.access = r.json()["access"]
        self.refresh = r.json()["refresh"]

    async def ensure_session(self) -> None:
        if self.session_id:
            r = await self.http("POST", f"/api/hermes/sessions/{self.session_id}/join", json={})
            if r.status_code not in (200, 201):
                raise HeadsetError(f"join failed: {r.status_code} {r.text[:200]}")
            return
        body: dict[str, Any] = {"name": f"headset {self.options.username}"}
        scene_version = self.options.scene_version
        if not scene_version and self.options.published_scene:
            scene_version = await self.first_published_scene()
        if scene_version:
            body["scene_version"] = scene_version
        r = await self.http("POST", "/api/hermes/session_create", json=body)
        if r.status_code != 201:
            raise HeadsetError(f"session_create failed: {r.status_code} {r.text[:200]}")
        self.session_id = str(r.json()["id"])

    async def first_published_scene(self) -> str | None:
        r = await self.http("GET", "/api/daedalus/scenes", params={"limit": 1})
        if r.status_code != 200:
            raise HeadsetError(f"listing scenes failed: {r.status_code} {r.text[:200]}")
        scenes = [s for s in r.json().get("results", []) if s.get("published_version")]
        if not scenes:
            logger.warning("no published scene: streaming the worker's test pattern")
            return None
        return str(scenes[0]["published_version"]["id"])

    # ------------------------------------------------------------------ session socket

    async def open_socket(self) -> None:
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}/ws/hermes/sessions/{self.session_id}/"
        self.ws = await connect(
            url,
            subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(f"{BEARER_PREFIX}{self.access}")],
            open_timeout=20,
        )
        self._tasks.append(asyncio.ensure_future(self._read_socket()))
        self._tasks.append(asyncio.ensure_future(self._heartbeats()))
        await self.send_event("hermes:session_join", {})
        established = await self.wait_event("hermes:session_established", 20)
        self.participant_id = established.get("participant_id")

    async def send_event(self, event: str, data: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"event": event, "data": data}))

    async def wait_event(self, event: str, within_s: float) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._event_waiters.append((event, future))
        return await asyncio.wait_for(future, within_s)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(SESSION_HEARTBEAT_S)
            await self.send_event("athena:heartbeat", {"t": _ms()})

    async def _read_socket(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                event, data = message.get("event"), message.get("data") or {}
                self.events.append({"event": event, "t": _ms(), "data": _brief(data)})
                for waited, future in list(self._event_waiters):
                    if waited == event and not future.done():
                        future.set_result(data)
                        self._event_waiters.remove((waited, future))
                try:
                    await self._on_event(event, data)
                except Exception:
                    logger.exception("headset: handling %s failed", event)
        except ConnectionClosed as exc:
            logger.info("session socket closed: %s", exc)

    async def _on_event(self, event: str, data: dict[str, Any]) -> None:
        if event == "morpheus:render_started":
            if data.get("stream_id") and data.get("offer"):
                await self._answer(data)
        elif event == "morpheus:signal" and self.conn is not None:
            cand = data.get("candidate")
            if data.get("stream_id") == self.conn.stream_id and cand and cand.get("candidate"):
                ice: RTCIceCandidate = candidate_from_sdp(cand["candidate"].split(":", 1)[-1])
                ice.sdpMid, ice.sdpMLineIndex = cand.get("sdpMid"), cand.get("sdpMLineIndex")
                await self.conn.pc.addIceCandidate(ice)
        elif event == "morpheus:quality_changed":
            self.rung_changes.append({"t": _ms(), **data, "source": "platform"})
        elif event == "error":
            logger.warning("platform error event: %s", data)

    # ------------------------------------------------------------------ WebRTC

    async def _answer(self, data: dict[str, Any]) -> None:
        """Answer an offer: the first one, or a new one after the stream moved workers."""
        old = self.conn
        if old is not None:
            self._old.append(old)
            for task in old.tasks:
                task.cancel()
            await _close_soon(old.pc)
        self.render_started_count += 1
        # The platform's STUN/TURN servers (our own TURN credentials) and transport policy.
        self.ice = data.get("ice") or {}
        if self.ice.get("expires_at"):
            # A fifth of their lifetime before they expire, at most ICE_RENEW_BEFORE_S.
            lifetime = float(self.ice["expires_at"]) - time.time()
            self._renew_before_s = min(ICE_RENEW_BEFORE_S, 0.2 * lifetime)
        # Bundled like a browser: one transport for video, data channels and voices.
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=ice_servers(
                    self.ice.get("ice_servers") or [],
                    prefer_transport=self.options.turn_transport,
                ),
                iceTransportPolicy=RTCIceTransportPolicy(
                    self.options.ice_transport_policy
                    or self.ice.get("ice_transport_policy")
                    or "all"
                ),
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        conn = Connection(self.render_started_count, str(data["stream_id"]), pc)
        self.conn = conn
        self.stream_id = conn.stream_id

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                conn.tasks.append(asyncio.ensure_future(self._receive_video(conn, track)))
            elif track.kind == "audio":
                # Other participants' voices: not listened to here, but read, or aiortc
                # keeps every decoded frame (workers/headset/voice.py listens).
                conn.tasks.append(asyncio.ensure_future(_drain(track)))

        @pc.on("datachannel")
        def on_channel(channel: Any) -> None:
            if channel.label == "pose":
                conn.pose_channel = channel
            elif channel.label == "frames":
                conn.frames_channel = channel

                @channel.on("message")
                def on_meta(message: str | bytes) -> None:
                    meta = json.loads(message)
                    conn.metas[int(meta["frame_id"]) % ID_MODULO] = meta

            if conn.pose_channel is not None and conn.frames_channel is not None:
                conn.channels_open.set()

        offer = data["offer"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await self.send_event("morpheus:signal", {"stream_id": conn.stream_id, "answer": answer})
        conn.tasks.append(asyncio.ensure_future(self._send_poses(conn)))
        self.render_started.set()

    async def _send_poses(self, conn: Connection) -> None:
        await conn.channels_open.wait()
        period = 1.0 / self.options.fps
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick = 0
        while True:
            t = loop.time() - self.started_at
            p, q = self.options.pose_at(t)
            self.seq += 1
            now = _ms()
            message = {"p": list(p), "q": list(q), "t": now, "seq": self.seq}
            if conn.pose_channel.readyState == "open":
                conn.pose_channel.send(json.dumps(message, separators=(",", ":")))
                self.pose_sent[self.seq] = now
            if self.seq % 90 == 0 and conn.frames_channel.readyState == "open":
                feedback = {"frames_decoded": len(self.frames)}
                conn.frames_channel.send(json.dumps(feedback))
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * period - loop.time()))

    async def _receive_video(self, conn: Connection, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            assert isinstance(frame, av.VideoFrame)
            decoded = _ms()
            plane = frame.planes[0]
            luma = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
            frame_id = read_frame_id(luma[:32, : frame.width])
            if frame_id is None:
                continue
            self._last_frame_at = asyncio.get_running_loop().time()
            if self.first_frame_at is None:
                self.first_frame_at = decoded
                if self.options.ice_restart_after_s > 0:
                    self._tasks.append(asyncio.ensure_future(self._media_watchdog()))
            if self.options.keep_picture:
                self.picture = luma[: frame.height, : frame.width].copy()
            self.frames.append(
                FrameRecord(conn.placement, frame_id, decoded, frame.width, frame.height)
            )
            self._frame_event.set()
            if len(self.frames) % 64 == 0:
                self._resolve(conn)

    async def _media_watchdog(self) -> None:
        """A headset's view of a lost media path is frames stopping: after
        ``ice_restart_after_s`` without one, ask for an ICE restart (``morpheus:signal``
        ``{restart: true}``), as the browser client does on ``disconnected``; the worker's new
        offer arrives as ``render_started`` for the same stream. aiortc's own ICE consent
        check takes some 30 s to call a path failed: far too slow for a viewer."""
        loop = asyncio.get_running_loop()
        asked_at = -float("inf")
        while True:
            await asyncio.sleep(0.25)
            now = loop.time()
            # TURN credentials expire (the platform's TURN_CREDENTIAL_TTL_S): renew them, as
            # the browser does, by a restart that gives both ends fresh ones.
            expires = self.ice.get("expires_at")
            renew = expires is not None and float(expires) - time.time() < self._renew_before_s
            stalled = now - self._last_frame_at >= self.options.ice_restart_after_s
            if not (stalled or renew):
                continue
            if now - asked_at < self.options.ice_restart_retry_s or not self.stream_id:
                continue
            asked_at = now
            self.ice_restarts += 1
            if renew:
                logger.info("TURN credentials expire soon: asking for an ICE restart")
            else:
                stalled_s = now - self._last_frame_at
                logger.info("no frame for %.1f s: asking for an ICE restart", stalled_s)
            with contextlib.suppress(ConnectionClosed):
                await self.send_event(
                    "morpheus:signal", {"stream_id": self.stream_id, "restart": True}
                )

    def _resolve(self, conn: Connection) -> None:
        """Join decoded frames with their metadata (it may arrive after the picture)."""
        for record in self.frames:
            if record.stages is not None or record.placement != conn.placement:
                continue
            meta = conn.metas.get(record.frame_id)
            if meta is None:
                continue
            t = meta.get("t", {})
            record.pose_seq = int(meta.get("pose_seq", 0))
            record.rung = meta.get("rung")
            sent = self.pose_sent.get(record.pose_seq)
            if sent is not None and record.pose_seq > 0:
                record.latency_ms = record.decoded_ms - sent
            record.stages = _stages(t, record.decoded_ms)
            if record.rung and record.rung != self._last_rung:
                if self._last_rung is not None:
                    self.rung_changes.append(
                        {
                            "t": record.decoded_ms,
                            "from": self._last_rung,
                            "to": record.rung,
                            "source": "frames",
                        }
                    )
                self._last_rung = record.rung

    # ------------------------------------------------------------------ run

    async def start(self) -> None:
        """Log in, join, open the socket and ask for a stream (waits for the offer)."""
        self.started_at = asyncio.get_running_loop().time()
        await self.login()
        await self.ensure_session()
        await self.open_socket()
        body: dict[str, Any] = {"session_id": self.session_id}
        if self.options.quality:
            body["quality"] = self.options.quality
        r = await self.http("POST", "/api/morpheus/render_start", json=body)
        if r.status_code in (200, 201):
            self.stream_id = r.json()["stream_id"]
        elif r.status_code == 503 and r.json()["error"]["code"] == "no_capacity":
            detail = r.json()["error"]["detail"]
            self.stream_id = detail["stream_id"]
            logger.info("queued at position %s", detail["queue_position"])
        else:
            raise HeadsetError(f"render_start failed: {r.status_code} {r.text[:300]}")
        await asyncio.wait_for(self.render_started.wait(), self.options.start_timeout_s)

    async def wait_frames(self, count: int, within_s: float, *, placement: int = 0) -> None:
        """Wait until ``count`` frames (of connection ``placement`` or later) are decoded."""

        def enough() -> bool:
            return sum(1 for f in self.frames if f.placement >= placement) >= count

        try:
            async with asyncio.timeout(within_s):
                while not enough():
                    self._frame_event.clear()
                    await self._frame_event.wait()
        except TimeoutError:
            raise TimeoutError(f"only {len(self.frames)} of {count} frames decoded") from None

    async def run(self) -> dict[str, Any]:
        try:
            await self.start()
            await self.wait_frames(1, self.options.start_timeout_s)
            if self.options.ready_file is not None:
                self.options.ready_file.write_text(self.stream_id)
            measure_from = len(self.frames)
            started = _ms()
            await asyncio.sleep(self.options.seconds)
            elapsed = (_ms() - started) / 1000.0
            metrics = await self.metrics()
            # aiortc's inbound stats carry no byte counts: the bitrate is the worker's
            # report (bits it sent per second), averaged over the measured window.
            rates = [
                h["bitrate_bps"]
                for h in metrics.get("history", [])
                if h.get("t") and h["t"] >= started and h.get("bitrate_bps")
            ]
            bitrate = sum(rates) / len(rates) if rates else float(metrics.get("bitrate_bps") or 0)
            result = self.result(measure_from, elapsed, bitrate)
            result["summary"]["encoder"] = metrics.get("encoder")
            result["summary"]["worker"] = metrics.get("worker")
            result["worker_metrics"] = {k: v for k, v in metrics.items() if k != "history"}
            # The worker's per-second reports (rung, fps, bitrate, loss, RTT): the timeline.
            result["worker_history"] = [
                h for h in metrics.get("history", []) if h.get("t") and h["t"] >= started
            ]
            return result
        finally:
            await self.close()

    async def metrics(self) -> dict[str, Any]:
        """The platform's ``performance_metrics`` of our stream ({} if unavailable)."""
        r = await self.http("GET", f"/api/morpheus/performance_metrics?stream_id={self.stream_id}")
        return dict(r.json()) if r.status_code == 200 else {}

    def result(self, measure_from: int, elapsed: float, bitrate: float) -> dict[str, Any]:
        if self.conn is not None:
            self._resolve(self.conn)
        frames = self.frames[measure_from:]
        latencies = [f.latency_ms for f in frames if f.latency_ms is not None]
        stage_names = sorted({k for f in frames if f.stages for k in f.stages})
        stage_p50: dict[str, Any] = {}
        for name in stage_names:
            stage_p50[name] = percentiles(
                [f.stages[name] for f in frames if f.stages and name in f.stages]
            )
        # Overhead: measured latency vs the sum of the p50 stage times (queue ... decode).
        stage_sum = sum(v["p50"] for k, v in stage_p50.items() if v and k != "total")
        latency = percentiles(latencies)
        summary = {
            "session_id": self.session_id,
            "stream_id": self.stream_id,
            "seconds": round(elapsed, 2),
            "frames": len(frames),
            "fps": round(len(frames) / max(elapsed, 1e-6), 2),
            "target_fps": self.options.fps,
            "size": [frames[-1].width, frames[-1].height] if frames else None,
            "latency_ms": latency,
            "stage_ms": stage_p50,
            "overhead_ratio": round(latency["p50"] / stage_sum, 3)
            if latency and stage_sum
            else None,
            "bitrate_bps": int(bitrate),
            "rung": frames[-1].rung if frames else None,
            "rung_changes": self.rung_changes,
            "render_started": self.render_started_count,
            "ice_restarts": self.ice_restarts,
            "participant_id": self.participant_id,
            "poses_sent": self.seq,
        }
        return {
            "summary": summary,
            "frames": [f.__dict__ for f in frames],
            "events": self.events[-200:],
        }

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        conns = [*self._old, *([self.conn] if self.conn else [])]
        for conn in conns:
            for task in conn.tasks:
                task.cancel()
            await _close_soon(conn.pc)
        if self.options.stop_stream and self.stream_id and self.access:
            with contextlib.suppress(Exception):
                await self.http("DELETE", f"/api/morpheus/render_stop?stream_id={self.stream_id}")
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def _close_soon(pc: RTCPeerConnection, within_s: float = 1.0) -> None:
    """Close ``pc``, waiting at most ``within_s``. Closing a relayed connection deletes its
    TURN allocation, which aioice retries for some 40 s when the path is gone (an ICE restart
    after a roam): a new offer, or the end of a run, must not wait for that. The close goes
    on in the background; coturn drops an allocation nobody refreshes anyway."""
    closing = asyncio.ensure_future(pc.close())
    try:
        await asyncio.wait_for(asyncio.shield(closing), within_s)
    except TimeoutError:
        logger.info("peer connection still closing (TURN allocation unreachable?)")
    except Exception:
        logger.exception("closing a peer connection failed")


def _stages(t: dict[str, float], decoded: float) -> dict[str, float]:
    """The worker's stage durations plus network+decode up to ``decoded`` (ms); empty when
    the metadata lacks a stage timestamp."""
    try:
        return {**frame_stages(t), "network_decode": decoded - t["send"]}
    except KeyError:
        return {}


def _brief(data: dict[str, Any]) -> dict[str, Any]:
    """Events as recorded in the JSON: SDP bodies left out."""
    out = dict(data)
    if isinstance(out.get("offer"), dict):
        out["offer"] = {"type": out["offer"].get("type"), "sdp": "..."}
    return out
