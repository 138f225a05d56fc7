"""One WebRTC peer connection per stream, and the registry of all of them.

The worker creates the OFFER (server-initiated): ``offer = await peer.create_offer()``,
relay it to the headset, then ``await peer.set_answer(answer)``. aiortc gathers all ICE
candidates before the offer resolves, so the offer carries them; trickled candidates from
the client go to ``add_candidate``.

A stream's configuration is :mod:`workers.streaming.config`; turning the platform's ICE servers
into aiortc's and naming the selected candidate pair is :mod:`workers.streaming.ice`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.sdp import candidate_from_sdp
from pyee.asyncio import AsyncIOEventEmitter

from workers.protocol import (
    FRAME_STAGES,
    ClientFeedback,
    ClientStats,
    FrameMeta,
    Percentiles,
    Pose,
    PoseCounts,
    ProtocolError,
    StreamReport,
    TokenBucket,
    frame_latency_ms,
    frame_stages,
    parse_client_feedback,
    parse_pose,
    percentiles,
)
from workers.streaming import playout
from workers.streaming.config import StreamConfig
from workers.streaming.encoder import (
    EncoderChoice,
    EncoderConfig,
    StreamEncoder,
    install_encoder,
)
from workers.streaming.forecast import StreamForecaster, StreamPoint, forecast_report
from workers.streaming.frames import FrameSource
from workers.streaming.governor import RenderGovernor
from workers.streaming.ice import ice_servers, selected_pair_type
from workers.streaming.prediction import PosePredictor
from workers.streaming.quality import QualityChange, QualityController, QualitySample
from workers.streaming.session import SessionPoses
from workers.streaming.track import StereoVideoTrack
from workers.streaming.voice import SessionVoice, VoiceSlotTrack
from workers.streaming.xrinput import InputTracker

logger = logging.getLogger(__name__)


PC_CLOSE_TIMEOUT_S = 3.0


class StreamPeer(AsyncIOEventEmitter):  # type: ignore[misc]
    """Owns one ``RTCPeerConnection`` for one stream. Construct it inside the event loop.

    Events (``peer.on(name, handler)``): ``pose`` (Pose accepted), ``pose_rejected``
    (reason code), ``input`` ((side, kind) of a select/squeeze), ``frame`` (FrameMeta sent),
    ``feedback`` (ClientFeedback), ``quality_change`` (QualityChange), ``stats``
    (StreamReport), ``closed`` (no args).
    """

    def __init__(
        self,
        config: StreamConfig,
        source: FrameSource,
        *,
        encoder_choice: EncoderChoice,
        session_poses: SessionPoses | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.session_poses = session_poses
        self._loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        # max-bundle: one transport for all m-lines. aiortc's default (balanced) gives each
        # extra audio m-line (the voice slots) a transport of its own that never connects.
        self.pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=ice_servers(config.ice_servers),
                # aiortc gathers only relay candidates then (and uses the first TURN URL).
                iceTransportPolicy=RTCIceTransportPolicy(config.ice_transport_policy),
                bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
            )
        )
        self.predictor = PosePredictor()
        self.quality = QualityController(
            initial=config.quality,
            fps=config.target_fps,
            max_rung=config.max_quality,
            pinned=config.pinned_quality,
            rung_sizes=config.rung_sizes,
        )
        self.governor = RenderGovernor(
            fps=config.target_fps,
            enabled=config.render_governor,
            min_scale=config.min_render_scale,
        )
        self.track = StereoVideoTrack(
            source,
            predictor=self.predictor,
            size=config.stereo_size(self.quality.rung),
            target_fps=config.target_fps,
            avatars=self._avatars,
            governor=self.governor,
        )
        self.encoder = StreamEncoder(
            encoder_choice,
            EncoderConfig(
                fps=config.target_fps,
                bitrate=self.quality.bitrate,
                max_bitrate=config.max_bitrate,
                threads=config.encoder_threads,
            ),
            on_encoded=self._on_encoded_threadsafe,
        )
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        codecs = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences(
            [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]
        )
        install_encoder(transceiver.sender, self.encoder)
        self.playout = playout.install(transceiver.sender) if config.playout_delay else None
        # Voice (voice.py): the client's microphone in, other participants' voices out.
        # The microphone's m-line comes first: the browser client answers it with its mic.
        self.voice: SessionVoice | None = (
            session_poses.voice if session_poses is not None and config.participant_id else None
        )
        self.mic = self.pc.addTransceiver("audio", direction="recvonly")
        self.voice_slots: list[VoiceSlotTrack] = []
        self._voice_transceivers = []
        if self.voice is not None:
            for _ in range(config.voice_slots):
                slot = self.voice.new_slot()
                self.voice_slots.append(slot)
                self._voice_transceivers.append(self.pc.addTransceiver(slot, direction="sendonly"))
        self.pc.on("track", self._on_remote_track)
        self._voice_said: dict[str, Any] = {}
        # Unreliable and unordered: a late pose or frame report is useless, a retransmit
        # would only delay the next one.
        self.pose_channel = self.pc.createDataChannel("pose", ordered=False, maxRetransmits=0)
        self.frames_channel = self.pc.createDataChannel("frames", ordered=False, maxRetransmits=0)
        # Reliable and ordered: error events for the client (bad input it sent), rare and
        # each worth delivering. Separate so that every `frames` message stays a FrameMeta.
        self.events_channel = self.pc.createDataChannel("events")
        self.pose_channel.on("message", self._on_pose_message)
        self.frames_channel.on("message", self._on_feedback_message)
        self.pc.on("connectionstatechange", self._on_state)

        self.pose_counts: Counter[str] = Counter()  # received / accepted / <reject code>
        self.feedback: ClientFeedback | None = None
        self._bucket = TokenBucket(config.pose_rate_limit, config.pose_rate_limit)
        self._feedback_bucket = TokenBucket(config.feedback_rate_limit, config.feedback_rate_limit)
        self._layout_applied_at = -math.inf  # loop time of the last views/display-rate change
        self._layout_timer: asyncio.TimerHandle | None = None
        self.layout_changes = 0  # times views or the display rate were applied
        self.input = InputTracker()
        self._errors_sent: dict[str, float] = {}  # code -> loop time last told to the client
        self._encode_ms: list[float] = []
        self._frames_sent = 0
        self._bytes_encoded = 0
        self._last_stats: tuple[float, int, int] | None = None  # (t, frames, bytes sent)
        self._report: StreamReport | None = None
        self._pair_logged = ""
        # Stage durations and latency of the last frames sent, all from FrameMeta stamps, so
        # every stage and the latency in a report describe the same frames.
        self._frame_stats: deque[tuple[dict[str, float], float | None]] = deque(maxlen=256)
        self.on("frame", self._record_frame)
        # The link forecast runs here, where the data is: no platform round trip per report.
        self.forecaster = StreamForecaster()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.closed = asyncio.Event()

    @property
    def stream_id(self) -> str:
        return self.config.stream_id

    # ------------------------------------------------------------------ signalling

    async def create_offer(self) -> dict[str, str]:
        """Create the offer (with all host/srflx candidates) and start stats collection."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._spawn(self._stats_loop())
        if self.voice is not None:
            for slot, transceiver in zip(self.voice_slots, self._voice_transceivers, strict=True):
                slot.mid = transceiver.mid
            self.events_channel.on("open", lambda: self._say_voice(self._voice_said))
            self.voice.add_listener(self.config.participant_id, self.voice_slots, self._say)
            self._spawn(self._voice_positions_loop())
        desc = self.pc.localDescription
        sdp = playout.offer_with_extension(desc.sdp) if self.playout else desc.sdp
        return {"type": desc.type, "sdp": sdp}

    async def set_answer(self, answer: Mapping[str, str]) -> None:
        if answer.get("type") != "answer":
            raise ProtocolError("bad_value", "expected an answer")
        if self.playout is not None:
            self.playout.extension_id = playout.accepted_id(answer["sdp"])
            logger.info(
                "stream %s: client %s zero playout delay",
                self.stream_id,
                "accepts" if self.playout.extension_id else "does not support",
            )
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))

    async def add_candidate(self, candidate: Mapping[str, Any]) -> None:
        """A trickled ICE candidate from the client (``{candidate, sdpMid, sdpMLineIndex}``)."""
        text = str(candidate.get("candidate", ""))
        if not text:
            return  # end-of-candidates
        ice = candidate_from_sdp(text.removeprefix("candidate:"))
        ice.sdpMid = candidate.get("sdpMid")
        ice.sdpMLineIndex = candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(ice)

    # ------------------------------------------------------------------ quality

    def set_quality(
        self, *, max_quality: str | None, pinned_quality: str | None
    ) -> QualityChange | None:
        """The user's cap/pin (None clears). Applied from the next frame."""
        change = self.quality.set_limits(max_rung=max_quality, pinned=pinned_quality)
        self._apply_quality(change)
        return change

    def forecast_cap(self, rung: str, *, hold_s: float) -> QualityChange | None:
        """The platform forecasts trouble: cap at ``rung`` for ``hold_s`` seconds."""
        change = self.quality.forecast_cap(rung, now=self._loop.time(), hold_s=hold_s)
        self._apply_quality(change)
        return change

    def _apply_quality(self, change: QualityChange | None) -> None:
        self.track.set_size(self.config.stereo_size(self.quality.rung))
        self.encoder.set_bitrate(self.quality.bitrate)
        if change is not None:
            logger.info(
                "stream %s quality %s -> %s (%s)",
                self.stream_id,
                change.old,
                change.new,
                change.reason,
            )
            self.emit("quality_change", change)

    # ------------------------------------------------------------------ data channels

    def _avatars(self) -> dict[str, Pose]:
        if self.session_poses is None:
            return {}
        return self.session_poses.others(self.config.participant_id)

    def _reject(self, code: str, message: str = "") -> None:
        self.pose_counts[code] += 1
        self.emit("pose_rejected", code)
        self._tell_client(code, message or code)

    def _tell_client(self, code: str, message: str) -> None:
        """An error event on the ``events`` channel, at most once a second per code (a client
        sending garbage at display rate must not get an answer per message)."""
        now = self._loop.time()
        if now - self._errors_sent.get(code, -math.inf) < 1.0:
            return
        self._errors_sent[code] = now
        channel: RTCDataChannel = self.events_channel
        if channel.readyState == "open":
            error = {"code": code, "message": message[:200]}
            channel.send(json.dumps({"error": error}, separators=(",", ":")))

    def _on_pose_message(self, message: str | bytes) -> None:
        # Never raises: a bad client must not take the stream down.
        self.pose_counts["received"] += 1
        now = self._loop.time()
        if not self._bucket.take(now):
            self._reject("rate_limited")
            return
        try:
            pose = parse_pose(message)
        except ProtocolError as exc:
            self._reject(exc.code, exc.message)
            return
        if not self.predictor.add(pose, now):
            self.pose_counts["stale"] += 1  # reordering on an unordered channel: not an error
            self.emit("pose_rejected", "stale")
            return
        self.track.pose_arrived()
        self.pose_counts["accepted"] += 1
        report = self.input.observe(pose, now)
        if report.dropped:
            self.pose_counts["event_flood"] += 1
            self._tell_client("event_flood", f"{report.dropped} select/squeeze events dropped")
        for event in report.events:
            self.emit("input", event)
        if self.session_poses is not None and self.config.participant_id:
            # Others see this participant where locomotion took them.
            self.session_poses.update(self.config.participant_id, pose.world())
        self.emit("pose", pose)

    # ------------------------------------------------------------------ voice

    def _on_remote_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self.voice is None:
            return
        pid = self.config.participant_id
        self.voice.add_speaker(pid, track)
        track.on("ended", lambda: self.voice.remove_speaker(pid) if self.voice else None)

    def _say(self, voice: dict[str, Any]) -> None:
        # What the client must know even if it connects its channel later: kept and resent.
        self._voice_said = {**self._voice_said, **voice}
        self._say_voice(voice)

    def _say_voice(self, voice: dict[str, Any]) -> None:
        channel: RTCDataChannel = self.events_channel
        if voice and channel.readyState == "open":
            channel.send(json.dumps({"voice": voice}, separators=(",", ":")))

    async def _voice_positions_loop(self) -> None:
        """Where each voice's speaker is (their head, in the scene), ten times a second, so
        the client can place the voice there."""
        while True:
            await asyncio.sleep(0.1)
            speakers = {slot.speaker for slot in self.voice_slots if slot.speaker}
            if not speakers or self.session_poses is None:
                continue
            others = self.session_poses.others(self.config.participant_id)
            positions = {
                pid: [round(v, 3) for v in others[pid].p] for pid in speakers if pid in others
            }
            if positions:
                self._say_voice({"pos": positions})

    def _on_feedback_message(self, message: str | bytes) -> None:
        # Limited like poses: a client flooding feedback must not cost the worker per message.
        if not self._feedback_bucket.take(self._loop.time()):
            self.pose_counts["feedback_rate_limited"] += 1
            self._tell_client("rate_limited", "too many frames-channel messages")
            return
        try:
            self.feedback = parse_client_feedback(message)
        except ProtocolError as exc:
            self.pose_counts[f"feedback_{exc.code}"] += 1
            return
        self._schedule_layout()
        self.emit("feedback", self.feedback)

    def _schedule_layout(self) -> None:
        """Apply views and display rate now, or when the interval since the last change has
        passed (the latest feedback then): each change restarts pacing and the encoder."""
        if self._layout_timer is not None:
            return  # the pending timer applies the latest feedback
        due = self._layout_applied_at + self.config.layout_interval_s
        if self._loop.time() >= due:
            self._apply_layout()
        else:
            self._layout_timer = self._loop.call_at(due, self._apply_layout)

    def _apply_layout(self) -> None:
        self._layout_timer = None
        feedback = self.feedback
        if feedback is None or self._closing:
            return
        before = (self.track.target_fps, self.track.views)
        self._match_display_rate(feedback.display_hz)
        self.track.set_views(feedback.views)
        if (self.track.target_fps, self.track.views) != before:
            self._layout_applied_at = self._loop.time()
            self.layout_changes += 1

    def _match_display_rate(self, display_hz: float) -> None:
        """Frames beyond the client's display rate are never shown: a 60 Hz desktop gets 60,
        a 90 Hz headset 90, never more than the platform's target."""
        if display_hz < 20:
            return  # not reported (older clients) or not measured yet
        fps = min(self.config.target_fps, round(display_hz))
        if fps != self.track.target_fps:
            logger.info(
                "stream %s paced at %d fps (display %.1f Hz)", self.stream_id, fps, display_hz
            )
            self.track.set_fps(fps)
            self.quality.set_fps(fps)
            self.encoder.config.fps = fps
            self.encoder.set_bitrate(self.quality.bitrate)

    def _on_encoded_threadsafe(
        self, pts: int, start: float, end: float, keyframe: bool, nbytes: int, name: str
    ) -> None:
        # Runs on the sender's encoder thread; everything else happens on the loop.
        self._loop.call_soon_threadsafe(self._on_encoded, pts, start, end, keyframe, nbytes)

    def _on_encoded(self, pts: int, start: float, end: float, keyframe: bool, nbytes: int) -> None:
        info = self.track.pop_info(pts)
        if info is None:
            return
        self._frames_sent += 1
        self._bytes_encoded += nbytes
        self._encode_ms.append((end - start) * 1000.0)
        del self._encode_ms[:-256]
        info.t["encode_end"] = end * 1000.0
        info.t["send"] = time.time() * 1000.0
        change = self.governor.observe(
            info.t["encode_end"] - info.t["render_start"], self._loop.time()
        )
        if change is not None:
            logger.info(
                "stream %s render scale %.3g -> %.3g (frame %.1f ms, budget %.1f ms)",
                self.stream_id,
                change.old,
                change.new,
                change.cost_ms,
                change.budget_ms,
            )
            self.emit("render_scale", change)
        meta = FrameMeta(
            info.frame_id,
            info.pose_seq,
            info.pose,
            info.t,
            self.quality.rung,
            keyframe,
            scale=info.scale,
            views=info.views,
        )
        channel: RTCDataChannel = self.frames_channel
        if channel.readyState == "open":
            channel.send(json.dumps(meta.to_dict(), separators=(",", ":")))
        self.emit("frame", meta)

    # ------------------------------------------------------------------ stats

    def _record_frame(self, meta: FrameMeta) -> None:
        self._frame_stats.append((frame_stages(meta.t), frame_latency_ms(meta.t)))

    def _stage_percentiles(self) -> tuple[dict[str, Percentiles], Percentiles | None]:
        frames = list(self._frame_stats)
        stage_ms = {}
        for stage in FRAME_STAGES:
            values = [stages[stage] for stages, _ in frames if stage in stages]
            if values:
                stage_ms[stage] = percentiles(values)
        latencies = [latency for _, latency in frames if latency is not None]
        return stage_ms, percentiles(latencies) if latencies else None

    async def collect_stats(self) -> StreamReport:
        """Read RTCP stats once, feed the quality controller, return the stats report."""
        now = self._loop.time()
        loss = rtt_ms = jitter_ms = None
        bytes_sent = 0
        for stat in (await self.pc.getStats()).values():
            if stat.type == "remote-inbound-rtp" and stat.kind == "video":
                loss = stat.fractionLost / 256.0
                rtt_ms = stat.roundTripTime * 1000.0 if stat.roundTripTime is not None else None
                jitter_ms = stat.jitter / 90.0  # RTP units of the 90 kHz video clock
            elif stat.type == "outbound-rtp" and stat.kind == "video":
                bytes_sent = stat.bytesSent
        prev = self._last_stats or (now, 0, 0)
        dt = max(now - prev[0], 1e-6)
        fps = (self._frames_sent - prev[1]) / dt if self._last_stats else 0.0
        bitrate = (bytes_sent - prev[2]) * 8 / dt if self._last_stats else 0.0
        self._last_stats = (now, self._frames_sent, bytes_sent)

        render = percentiles(self.track.render_ms[-128:])  # render + convert: the frame work
        encode = percentiles(self._encode_ms[-128:])
        feedback = self.feedback
        sample = QualitySample(
            t=now,
            loss=loss or 0.0,
            rtt_ms=rtt_ms,
            jitter_ms=jitter_ms,
            available_bps=self.encoder.remb_bps,
            # At the rung's full size: the governor's scaling is not the rung's capacity.
            frame_ms=(render.p50 + encode.p50) / self.track.scale**2 if self._encode_ms else None,
            client_decode_ms=feedback.decode_ms if feedback and feedback.decode_ms else None,
            sent_bps=bitrate or None,
        )
        self._apply_quality(self.quality.update(sample))
        remb = self.encoder.remb_bps
        forecast, cap = self.forecaster.update(
            StreamPoint(
                t=now,
                rung=self.quality.rung,
                fps=self.config.target_fps,
                bitrate_bps=bitrate or None,
                available_bps=None if remb is None else float(remb),
                rtt_ms=rtt_ms,
                loss=loss,
            ),
            now=now,
        )
        if cap is not None:
            self.forecast_cap(cap, hold_s=self.forecaster.config.hold_s)
        pose_counts = dict(self.pose_counts)
        stage_ms, latency_ms = self._stage_percentiles()
        self._report = StreamReport(
            t=time.time() * 1000.0,
            rung=self.quality.rung,
            fps=round(fps, 2),
            target_fps=self.config.target_fps,
            frames_sent=self._frames_sent,
            frames_dropped=self.track.dropped,
            bitrate_bps=int(bitrate),
            target_bitrate_bps=int(self.encoder.target_bitrate),
            remb_bps=None if remb is None else int(remb),
            loss=loss,
            rtt_ms=rtt_ms,
            jitter_ms=jitter_ms,
            size=(int(self.track.size[0]), int(self.track.size[1])),
            # Below 1 the governor renders and encodes a smaller picture to hold the rate.
            render_scale=self.track.scale,
            render_scale_changes=self.governor.changes,
            paced_fps=self.track.target_fps,
            encoder=self.encoder.active_name[:32],
            encoder_reason=self.encoder.choice.reason[:256],
            keyframes=self.encoder.keyframes,
            stage_ms=stage_ms,
            latency_ms=latency_ms,
            pose=PoseCounts(
                received=pose_counts.pop("received", 0),
                accepted=pose_counts.pop("accepted", 0),
                rejected=dict(list(pose_counts.items())[:32]),
            ),
            client=ClientStats(
                decode_ms=feedback.decode_ms if feedback else None,
                display_ms=feedback.display_ms if feedback else None,
                frames_dropped=feedback.frames_dropped if feedback else None,
            ),
            forecast=forecast_report(forecast, acted=cap is not None),
            xr=self.input.summary(),
            candidate_pair=self._candidate_pair(),
            voice={
                "slots": {slot.mid: slot.speaker for slot in self.voice_slots if slot.mid},
                "forwarded": sum(slot.forwarded for slot in self.voice_slots),
                "dropped_muted": sum(slot.dropped_muted for slot in self.voice_slots),
            },
        )
        self.emit("stats", self._report)
        return self._report

    def _candidate_pair(self) -> str:
        pair = selected_pair_type(self.pc)
        if pair and pair != self._pair_logged:
            logger.info("stream %s media on a %s candidate pair", self.stream_id, pair)
            self._pair_logged = pair
        return pair

    def stats_report(self) -> StreamReport | None:
        """The latest report from :meth:`collect_stats` (None before the first)."""
        return self._report

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval_s)
            try:
                await self.collect_stats()
            except Exception:
                logger.exception("stats collection failed for stream %s", self.stream_id)

    # ------------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        logger.info("stream %s connection %s", self.stream_id, state)
        if state in ("failed", "closed"):
            self._spawn(self.close())

    async def close(self) -> None:
        """Idempotent; concurrent callers all return once it is closed."""
        if self._closing:
            await self.closed.wait()
            return
        self._closing = True
        if self._layout_timer is not None:
            self._layout_timer.cancel()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self.track.stop()
        if self.voice is not None:
            self.voice.remove_speaker(self.config.participant_id)
            self.voice.remove_listener(self.config.participant_id)
        # A relayed peer's close deletes its TURN allocation, which aioice retries for some
        # 40 s when the TURN server is out of reach (the worker's network changed, coturn
        # went away): an ICE restart or a shutdown must not wait that long. The close goes on
        # in the background; coturn frees an allocation nobody refreshes anyway.
        pc_close = asyncio.ensure_future(self.pc.close())
        try:
            await asyncio.wait_for(asyncio.shield(pc_close), PC_CLOSE_TIMEOUT_S)
        except TimeoutError:
            logger.warning(
                "stream %s: peer close still pending (TURN unreachable?)", self.stream_id
            )
        if self.session_poses is not None and self.config.participant_id:
            self.session_poses.remove(self.config.participant_id)
        self.closed.set()
        self.emit("closed")


class PeerRegistry:
    """All live peers of a worker, by stream id. ``close_all`` on shutdown."""

    def __init__(self) -> None:
        self._peers: dict[str, StreamPeer] = {}

    def add(self, peer: StreamPeer) -> None:
        if peer.stream_id in self._peers:
            raise ValueError(f"stream {peer.stream_id} already registered")
        self._peers[peer.stream_id] = peer
        peer.on("closed", lambda: self._peers.pop(peer.stream_id, None))

    def get(self, stream_id: str) -> StreamPeer | None:
        return self._peers.get(stream_id)

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._peers

    async def close(self, stream_id: str) -> bool:
        peer = self._peers.get(stream_id)
        if peer is None:
            return False
        await peer.close()
        return True

    async def close_all(self) -> None:
        await asyncio.gather(*(peer.close() for peer in list(self._peers.values())))
