"""Two real RTCPeerConnections in one process: the worker's StreamPeer and a test client."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from workers.protocol import RUNGS, Pose, parse_frame_meta
from workers.streaming.encoder import X264, EncoderChoice
from workers.streaming.frames import ID_MODULO, PatternSource, read_frame_id
from workers.streaming.peer import PeerRegistry, StreamConfig, StreamPeer
from workers.streaming.quality import QualityChange
from workers.streaming.session import SessionPoses

EYE = (320, 180)
SMALL = {rung: EYE for rung in RUNGS}
TIMEOUT = 20.0


@dataclass
class Client:
    pc: RTCPeerConnection
    track: asyncio.Future[MediaStreamTrack]
    channels: dict[str, Any] = field(default_factory=dict)
    channels_open: asyncio.Event = field(default_factory=asyncio.Event)
    metas: dict[int, dict[str, Any]] = field(default_factory=dict)
    meta_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def frame(self) -> np.ndarray:
        track = await asyncio.wait_for(self.track, TIMEOUT)
        frame = await asyncio.wait_for(track.recv(), TIMEOUT)
        assert isinstance(frame, av.VideoFrame)
        return frame.to_ndarray(format="yuv420p")

    async def meta_for(self, frame_id: int, within_s: float = 2.0) -> dict[str, Any] | None:
        """The frame's metadata, or None: it rides an unreliable channel (no retransmits),
        and a loaded machine does drop some. Metadata and video may arrive in either order."""
        try:
            async with asyncio.timeout(within_s):
                while frame_id not in self.metas:
                    self.meta_event.clear()
                    await self.meta_event.wait()
        except TimeoutError:
            return None
        return self.metas[frame_id]


def make_config(stream_id: str = "s1", **kw: Any) -> StreamConfig:
    kw.setdefault("render_governor", False)  # size checks; the governor has its own tests
    kw.setdefault("rung_sizes", SMALL)
    return StreamConfig(stream_id=stream_id, session_id="sess", **kw)


async def connect(peer: StreamPeer) -> Client:
    # Bundled like a browser: one transport for the video, the data channels and the voices.
    pc = RTCPeerConnection(RTCConfiguration(bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    track: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    client = Client(pc, track)

    @pc.on("track")
    def on_track(t: MediaStreamTrack) -> None:
        if t.kind == "video" and not track.done():  # the voices' audio tracks come too
            track.set_result(t)

    @pc.on("datachannel")
    def on_channel(channel: Any) -> None:
        client.channels[channel.label] = channel
        if channel.label == "frames":

            @channel.on("message")
            def on_meta(message: str) -> None:
                meta = parse_frame_meta(message)
                client.metas[meta.frame_id % ID_MODULO] = json.loads(message)
                client.meta_event.set()

        if {"pose", "frames", "events"} <= client.channels.keys():
            client.channels_open.set()

    offer = await peer.create_offer()
    await pc.setRemoteDescription(RTCSessionDescription(**offer))
    await pc.setLocalDescription(await pc.createAnswer())
    await peer.set_answer({"type": "answer", "sdp": pc.localDescription.sdp})
    await asyncio.wait_for(client.channels_open.wait(), TIMEOUT)
    return client


@pytest.fixture
async def registry() -> AsyncIterator[PeerRegistry]:
    reg = PeerRegistry()
    yield reg
    await reg.close_all()


async def start(registry: PeerRegistry, **kw: Any) -> tuple[StreamPeer, Client]:
    peer = StreamPeer(
        make_config(**kw), PatternSource(), encoder_choice=EncoderChoice(X264, "test")
    )
    registry.add(peer)
    client = await connect(peer)
    return peer, client


async def test_client_decodes_stereo_frames_with_matching_ids(registry: PeerRegistry) -> None:
    peer, client = await start(registry)
    ids = []
    for _ in range(12):
        image = await client.frame()
        assert image.shape == (EYE[1] * 3 // 2, EYE[0] * 2)
        frame_id = read_frame_id(image)
        assert frame_id is not None
        ids.append(frame_id)
    assert ids == sorted(set(ids))
    metas = [await client.meta_for(frame_id) for frame_id in ids]
    assert sum(m is not None for m in metas) >= len(ids) * 3 // 4
    for frame_id, meta in zip(ids, metas, strict=True):
        if meta is None:
            continue
        assert meta["frame_id"] % ID_MODULO == frame_id
        t = meta["t"]
        assert t["render_start"] <= t["render_end"] <= t["convert_end"] <= t["encode_end"]
        assert t["encode_end"] <= t["send"]
    report = await peer.collect_stats()
    assert report.encoder == X264
    assert report.frames_sent >= len(ids)
    assert report.size == (EYE[0] * 2, EYE[1])
    # Every stage and the one latency come from the frames' own stamps, so they agree.
    assert set(report.stage_ms) >= {"render", "convert", "encode", "send"}
    assert report.latency_ms is None or report.latency_ms.p50 >= report.stage_ms["render"].p50
    await client.pc.close()


async def test_pose_changes_the_picture(registry: PeerRegistry) -> None:
    peer, client = await start(registry)
    first = await client.frame()
    yaw = 1.5
    pose = {
        "p": [0.0, 0.0, 0.0],
        "q": [0.0, math.sin(yaw / 2), 0.0, math.cos(yaw / 2)],
        "t": 1000.0,
        "seq": 1,
    }
    client.channels["pose"].send(json.dumps(pose))
    source = PatternSource()
    for _ in range(60):
        image = await client.frame()
        frame_id = read_frame_id(image)
        assert frame_id is not None
        meta = await client.meta_for(frame_id)
        if meta is not None and meta["pose_seq"] == 1:
            break
    else:
        pytest.fail("no frame rendered the new pose")
    rendered = meta["pose"]
    assert rendered["q"] == pytest.approx(pose["q"], abs=1e-6)
    size = (EYE[0] * 2, EYE[1])
    old = source.render(Pose(), 0, size).astype(np.float32)
    new = source.render(Pose(q=tuple(rendered["q"])), 0, size).astype(np.float32)
    body = slice(32, EYE[1])  # below the frame-id strip
    err_new = np.abs(image[body].astype(np.float32) - new[body]).mean()
    err_old = np.abs(image[body].astype(np.float32) - old[body]).mean()
    assert err_new < 5 < err_old
    assert np.abs(first[body].astype(np.float32) - old[body]).mean() < 5
    assert peer.pose_counts["accepted"] == 1
    await client.pc.close()


async def test_bad_pose_messages_are_counted_and_dropped(registry: PeerRegistry) -> None:
    peer, client = await start(registry)
    bad = [
        "not json",
        json.dumps({"p": [float("nan"), 0, 0], "q": [0, 0, 0, 1], "t": 1.0, "seq": 1}),
        json.dumps({"p": [1e9, 0, 0], "q": [0, 0, 0, 1], "t": 1.0, "seq": 2}),
        json.dumps({"p": [0, 0, 0], "q": [0, 0, 0, 1.5], "t": 1.0, "seq": 3}),
        json.dumps({"p": "x", "q": [0, 0, 0, 1], "t": 1.0, "seq": 4}),
        "[" * 3000 + "]" * 1000,
        json.dumps({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": 1.0, "seq": 5, "pad": "x" * 5000}),
    ]
    done = asyncio.Event()
    expected = len(bad) + 2
    peer.on("pose", lambda _pose: done.set() if peer.pose_counts["received"] >= expected else None)
    peer.on(
        "pose_rejected", lambda _c: done.set() if peer.pose_counts["received"] >= expected else None
    )
    for message in bad:
        client.channels["pose"].send(message)
    good = {"p": [0, 1.6, 0], "q": [0, 0, 0, 1], "t": 5.0, "seq": 10}
    client.channels["pose"].send(json.dumps(good))
    client.channels["pose"].send(json.dumps({**good, "seq": 9, "t": 4.0}))  # stale
    await asyncio.wait_for(done.wait(), TIMEOUT)
    counts = peer.pose_counts
    assert counts["received"] == expected
    assert counts["accepted"] == 1
    assert counts["bad_json"] == 2
    assert counts["bad_value"] == 2  # NaN and non-unit q
    assert counts["out_of_range"] == 1
    assert counts["bad_type"] == 1
    assert counts["too_large"] == 1
    assert counts["stale"] == 1
    # The stream survived: frames keep coming, and one renders the accepted pose.
    for _ in range(90):
        frame_id = read_frame_id(await client.frame())
        assert frame_id is not None
        meta = await client.meta_for(frame_id)
        if meta is not None and meta["pose_seq"] == 10:
            break
    else:
        pytest.fail("no frame rendered the accepted pose")
    report = await peer.collect_stats()
    assert report.pose.rejected["bad_json"] == 2
    # Accepted poses were rendered: the report has the measured latency and the queue stage.
    assert report.latency_ms is not None
    assert report.latency_ms.p50 > 0
    assert "queue" in report.stage_ms
    await client.pc.close()


async def test_pose_flood_is_rate_limited(registry: PeerRegistry) -> None:
    peer, client = await start(registry, pose_rate_limit=5.0)
    done = asyncio.Event()
    peer.on("pose_rejected", lambda code: done.set() if code == "rate_limited" else None)
    for seq in range(1, 30):
        client.channels["pose"].send(
            json.dumps({"p": [0, 0, 0], "q": [0, 0, 0, 1], "t": float(seq), "seq": seq})
        )
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert peer.pose_counts["rate_limited"] >= 1
    assert peer.pose_counts["accepted"] <= 6
    await client.pc.close()


async def test_close_is_idempotent_and_registry_closes_all() -> None:
    registry = PeerRegistry()
    session = SessionPoses()
    peers = []
    for n in range(2):
        peer = StreamPeer(
            make_config(f"s{n}", participant_id=f"user{n}"),
            PatternSource(),
            encoder_choice=EncoderChoice(X264, "test"),
            session_poses=session,
        )
        registry.add(peer)
        peers.append(peer)
    clients = [await connect(p) for p in peers]
    # Multi-user hook: a pose from user0 becomes an avatar for user1's stream.
    accepted = asyncio.Event()
    peers[0].on("pose", lambda _p: accepted.set())
    clients[0].channels["pose"].send(
        json.dumps({"p": [1, 1.6, 0], "q": [0, 0, 0, 1], "t": 1.0, "seq": 1})
    )
    await asyncio.wait_for(accepted.wait(), TIMEOUT)
    assert peers[1]._avatars().keys() == {"user0"}
    assert peers[0]._avatars() == {}

    await peers[0].close()
    await peers[0].close()
    await asyncio.gather(peers[0].close(), peers[0].close())
    assert peers[0].pc.connectionState == "closed"
    assert "s0" not in registry
    assert len(registry) == 1
    assert "user0" not in peers[1]._avatars()
    await registry.close_all()
    assert len(registry) == 0
    assert all(p.closed.is_set() for p in peers)
    assert peers[1].pc.connectionState == "closed"
    for client in clients:
        await client.pc.close()


async def test_quality_pin_resizes_the_stream(registry: PeerRegistry) -> None:
    sizes = {"4K": (384, 216), "2K": (352, 198), "1080p": (320, 180), "720p": (256, 144)}
    peer = StreamPeer(
        StreamConfig(stream_id="q", rung_sizes=sizes, render_governor=False),
        PatternSource(),
        encoder_choice=EncoderChoice(X264, "test"),
    )
    registry.add(peer)
    changes: list[QualityChange] = []
    peer.on("quality_change", changes.append)
    client = await connect(peer)
    assert (await client.frame()).shape == (180 * 3 // 2, 640)
    change = peer.set_quality(max_quality=None, pinned_quality="720p")
    assert change is not None
    assert (change.old, change.new) == ("1080p", "720p")
    for _ in range(30):
        image = await client.frame()
        if image.shape == (144 * 3 // 2, 512):
            break
    else:
        pytest.fail("stream did not switch to the pinned size")
    assert read_frame_id(image) is not None
    assert changes == [change]
    await client.pc.close()


class PerPixelCostSource(PatternSource):
    """A pattern whose render time grows with the pixel count, like llvmpipe's fragments."""

    def __init__(self, ms_at: tuple[int, float]) -> None:
        self.pixels, self.ms = ms_at

    def render(
        self, pose: Pose, frame_id: int, size: tuple[int, int], avatars: Any = None, views: int = 2
    ) -> Any:
        time.sleep(self.ms / 1000 * size[0] * size[1] / self.pixels)
        return super().render(pose, frame_id, size, avatars, views)


async def test_governor_renders_smaller_to_hold_the_rate_and_says_so(
    registry: PeerRegistry,
) -> None:
    full = {rung: (640, 360) for rung in RUNGS}
    peer = StreamPeer(
        StreamConfig(stream_id="g", rung_sizes=full, target_fps=30.0),
        # 60 ms a frame at full size: a 30 fps budget (28 ms) needs about half the pixels.
        PerPixelCostSource((1280 * 360, 60.0)),
        encoder_choice=EncoderChoice(X264, "test"),
    )
    registry.add(peer)
    client = await connect(peer)
    assert (await client.frame()).shape == (360 * 3 // 2, 1280)
    for _ in range(90):
        image = await client.frame()
        if image.shape[1] < 1280:
            break
    else:
        pytest.fail("the governor never scaled the picture down")
    height, width = image.shape[0] * 2 // 3, image.shape[1]
    assert abs(width / 2 / height - 640 / 360) < 0.05  # same aspect, both eyes
    frame_id = read_frame_id(image)
    assert frame_id is not None  # the stamp survives the smaller picture
    meta = await client.meta_for(frame_id, within_s=TIMEOUT)
    assert meta is not None
    assert meta["scale"] < 1.0
    assert width == 2 * int(640 * meta["scale"]) // 8 * 8
    report = await peer.collect_stats()
    assert report.render_scale < 1.0
    assert report.render_scale_changes >= 1
    await client.pc.close()


async def test_stream_is_paced_at_the_client_display_rate(registry: PeerRegistry) -> None:
    peer, client = await start(registry, target_fps=90.0)
    await client.frame()
    client.channels["frames"].send(json.dumps({"display_hz": 59.94}))
    for _ in range(100):
        if peer.track.target_fps == 60:
            break
        await asyncio.sleep(0.05)
    assert peer.track.target_fps == 60
    assert peer.quality.fps == 60
    ids = [read_frame_id(await client.frame()) for _ in range(5)]  # still streaming
    read = [i for i in ids if i is not None]
    assert read == sorted(read)
    assert len(read) == len(ids)
    client.channels["frames"].send(json.dumps({"display_hz": 240}))  # never above target
    await asyncio.sleep(0.3)
    assert peer.track.target_fps == 90
    report = await peer.collect_stats()
    assert report.paced_fps == 90
    await client.pc.close()


async def test_flat_client_gets_one_centre_view_and_stereo_again_when_it_asks(
    registry: PeerRegistry,
) -> None:
    """A desktop view shows one picture: the worker renders and sends one view (half the
    pixels); side by side again when the client asks. Each frame's metadata says which."""
    eye = (448, 252)  # one eye wide enough for the 384-px frame-id stamp
    peer, client = await start(registry, rung_sizes={rung: eye for rung in RUNGS})

    async def frame_with(width: int) -> tuple[np.ndarray, dict[str, Any]]:
        for _ in range(90):
            image = await client.frame()
            frame_id = read_frame_id(image)
            if image.shape[1] == width and frame_id is not None:
                meta = await client.meta_for(frame_id, within_s=TIMEOUT)
                if meta is not None:
                    return image, meta
        pytest.fail(f"no {width}-px frame with its metadata")

    _, meta = await frame_with(2 * eye[0])
    assert meta["views"] == 2
    client.channels["frames"].send(json.dumps({"views": 1}))
    image, meta = await frame_with(eye[0])
    assert image.shape == (eye[1] * 3 // 2, eye[0])
    assert meta["views"] == 1
    assert peer.track.views == 1
    client.channels["frames"].send(json.dumps({"views": 2}))
    _, meta = await frame_with(2 * eye[0])
    assert meta["views"] == 2
    # A bad value is counted and changes nothing.
    client.channels["frames"].send(json.dumps({"views": 3}))
    await asyncio.sleep(0.2)
    assert peer.pose_counts["feedback_out_of_range"] == 1
    assert peer.track.views == 2
    await client.pc.close()


async def test_a_view_too_narrow_for_the_stamp_stays_stereo(registry: PeerRegistry) -> None:
    peer, client = await start(registry)  # SMALL rungs: one eye is narrower than the stamp
    client.channels["frames"].send(json.dumps({"views": 1}))
    for _ in range(100):
        if peer.track.views == 1:
            break
        await asyncio.sleep(0.02)
    for _ in range(5):
        image = await client.frame()
        assert image.shape == (EYE[1] * 3 // 2, EYE[0] * 2)
        frame_id = read_frame_id(image)
        assert frame_id is not None
        meta = await client.meta_for(frame_id)
        assert meta is None or meta["views"] == 2
    await client.pc.close()


async def test_frames_channel_flood_is_rate_limited_and_layout_changes_coalesced(
    registry: PeerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 25 item 9: thousands of feedback messages flipping views 1↔2 and display rate
    30↔90 Hz gave a log line and an encoder restart per message. Now the channel is limited like
    poses, layout changes apply at most once per interval, and the last value wins."""
    caplog.set_level(logging.INFO, logger="workers.streaming.peer")
    peer, client = await start(registry, feedback_rate_limit=20.0, layout_interval_s=0.25)
    await client.frame()
    started = time.monotonic()
    channel = client.channels["frames"]
    for n in range(2000):
        channel.send(json.dumps({"views": 1 + n % 2, "display_hz": 30 if n % 2 else 90}))
        if n % 100 == 0:
            await asyncio.sleep(0.01)  # let the transport drain, as a real sender would
    for _ in range(200):
        if peer.pose_counts["feedback_rate_limited"] >= 1000:
            break
        await asyncio.sleep(0.05)
    assert peer.pose_counts["feedback_rate_limited"] >= 1000
    # After the flood: one more report, and it is the one that counts.
    # Let the flood's backlog drain (its last messages stop being refused), then the bucket
    # refills: a fixed pause let a slow machine's backlog spend the refill on the flood.
    refused = -1
    for _ in range(100):
        if peer.pose_counts["feedback_rate_limited"] == refused:
            break
        refused = peer.pose_counts["feedback_rate_limited"]
        await asyncio.sleep(0.3)
    await asyncio.sleep(0.3)  # the bucket refills a message
    channel.send(json.dumps({"views": 1, "display_hz": 60}))
    for _ in range(100):
        if (peer.track.target_fps, peer.track.views) == (60, 1):
            break
        await asyncio.sleep(0.05)
    assert (peer.track.target_fps, peer.track.views) == (60, 1)
    elapsed = time.monotonic() - started
    bound = elapsed / 0.25 + 2
    assert peer.layout_changes <= bound
    paced = [r for r in caplog.records if "paced at" in r.getMessage()]
    assert 1 <= len(paced) <= bound
    ids = [read_frame_id(await client.frame()) for _ in range(3)]  # still streaming
    assert all(i is not None for i in ids)
    await client.pc.close()
