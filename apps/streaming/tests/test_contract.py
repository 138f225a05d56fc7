"""The worker <-> platform contract (workers/protocol/), fed through both sides.

Every message type is built once (``EXAMPLES``) and: round-trips through the wire encoding;
is accepted only in its direction; goes through the platform's real control socket consumer
(worker -> platform types, with the effect each has), comes out of the platform's real
services and socket (platform -> worker types, parsed as the worker parses them); and goes
through the worker agent's real handler with a real ``StreamPeer`` (platform -> worker types),
whose outgoing messages (offer, stats, poses, stream_stopped) the platform's parser accepts.
"""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker, StreamStats
from apps.streaming.tests.messages import channel_messages, member_listener
from workers.protocol import (
    FROM_PLATFORM,
    FROM_WORKER,
    PROTOCOL_VERSION,
    ClientStats,
    ClipChange,
    ErrorMessage,
    ForecastReport,
    Heartbeat,
    Percentiles,
    Pose,
    PoseCounts,
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
    parse_from_worker,
    parse_worker_message,
)

TIMEOUT = 5.0
POSE = Pose(p=(0.5, 1.6, -2.0), q=(0.0, 0.0, 0.0, 1.0), t=1000.0, seq=7)
REPORT = StreamReport(
    t=1_700_000_000_000.0,
    rung="1080p",
    fps=89.5,
    target_fps=90.0,
    frames_sent=900,
    frames_dropped=2,
    bitrate_bps=24_000_000,
    target_bitrate_bps=25_000_000,
    remb_bps=60_000_000,
    loss=0.01,
    rtt_ms=12.5,
    jitter_ms=1.5,
    size=(3840, 1080),
    encoder="libx264",
    encoder_reason="no NVENC",
    keyframes=3,
    stage_ms={s: Percentiles(1.0, 2.0, 3.0) for s in ("queue", "render", "encode", "send")},
    latency_ms=Percentiles(21.0, 30.0, 44.0),
    pose=PoseCounts(received=100, accepted=98, rejected={"stale": 2}),
    client=ClientStats(decode_ms=3.0, display_ms=11.0, frames_dropped=0),
    forecast=ForecastReport(bandwidth_bps=5e7, horizon_s=3.0, confidence=0.5, rung="1080p"),
)
EXAMPLES: dict[str, WorkerMessage] = {
    "register": Register("w", {"max_streams": 2}, (PROTOCOL_VERSION,)),
    "registered": Registered("w", PROTOCOL_VERSION),
    "error": ErrorMessage("bad_value", "x must be a number"),
    "heartbeat": Heartbeat("w", 1, 0.5),
    "stream_start": StreamStart(
        "s", "sess", "pattern:", "2K", participant_id="3", voice_muted=["5"]
    ),
    "stream_stop": StreamStop("s", "user_stopped"),
    "stream_stopped": StreamStopped("s", "connection failed"),
    "signal": Signal("s", sdp={"type": "offer", "sdp": "v=0\r\n"}),
    "quality": QualityRequest("s", "2K", None, 8000),
    "quality_hint": QualityHint("s", "720p", 10.0),
    "stats": StatsReport("s", REPORT),
    "stats_batch": StatsBatch([StatsReport("s", REPORT), StatsReport("t", REPORT)]),
    "poses": WorkerPoses("sess", {"3": POSE}),
    "remote_poses": RemotePoses("sess", {"4": POSE}, 1_700_000_000_000.0),
    "voice_mute": VoiceMute("sess", "4", True),
    "clip_change": ClipChange("sess", "Walk"),
}


def test_every_message_type_has_an_example_and_survives_the_wire() -> None:
    types = {cls.__dataclass_fields__["type"].default for cls in typing.get_args(WorkerMessage)}
    assert types == set(EXAMPLES) == FROM_WORKER | FROM_PLATFORM
    for kind, message in EXAMPLES.items():
        assert message.type == kind
        assert parse_worker_message(encode_message(message)) == message, kind


def test_each_message_is_accepted_only_in_its_direction() -> None:
    for kind, message in EXAMPLES.items():
        text = encode_message(message)
        for parse, allowed in (
            (parse_from_worker, FROM_WORKER),
            (parse_from_platform, FROM_PLATFORM),
        ):
            if kind in allowed:
                assert parse(text) == message
            else:
                with pytest.raises(ProtocolError) as info:
                    parse(text)
                assert info.value.code == "unexpected_type"


def test_stats_reports_are_strict() -> None:
    good = json.loads(encode_message(EXAMPLES["stats"]))
    for path, value, code in [
        (("stage_ms", "paint"), {"p50": 1.0}, "bad_value"),  # not a frame stage
        (("latency_ms",), 12.0, "bad_type"),  # one latency, as percentiles
        (("fps",), "fast", "bad_type"),
        (("loss",), 1.5, "out_of_range"),
        (("rung",), "8K", "bad_value"),
    ]:
        bad = json.loads(json.dumps(good))
        target = bad["stats"]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ProtocolError) as info:
            parse_from_worker(bad)
        assert info.value.code == code, path


# ---------------------------------------------------------------- the platform side


async def _worker_socket(token: str) -> WebsocketCommunicator:
    from vrplatform.asgi import application

    comm = WebsocketCommunicator(
        application, "/ws/morpheus/worker/", subprotocols=["vrplatform.v1", f"bearer.{token}"]
    )
    connected, _ = await comm.connect(timeout=TIMEOUT)
    assert connected
    return comm


async def _from_platform(comm: WebsocketCommunicator) -> WorkerMessage:
    """The next message the platform sends, parsed exactly as the worker parses it."""
    output = await comm.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.send", output
    return parse_from_platform(output["text"])


def _to_platform(message: WorkerMessage, **changes: Any) -> str:
    body = json.loads(encode_message(message))
    return json.dumps(body | changes)


@pytest.mark.django_db(transaction=True)
async def test_every_message_type_through_the_platform(make_user: Any, make_session: Any) -> None:
    from django.db import connections

    worker, token = await database_sync_to_async(services.worker_create)(name="contract")
    comm = await _worker_socket(token)
    try:
        await comm.send_to(text_data=encode_message(EXAMPLES["register"]))
        assert await _from_platform(comm) == Registered("contract", PROTOCOL_VERSION)

        owner = await database_sync_to_async(make_user)()
        session = await database_sync_to_async(make_session)(owner)
        viewer = await database_sync_to_async(member_listener)(session.id, owner.pk)
        stream, _ = await database_sync_to_async(services.stream_start)(
            user=owner, session_id=session.id
        )
        sid = str(stream.id)
        start = await _from_platform(comm)
        assert isinstance(start, StreamStart)
        assert (start.stream_id, start.session_id) == (sid, str(session.id))

        # worker -> platform: the offer reaches the stream's owner as render_started.
        await comm.send_to(text_data=_to_platform(EXAMPLES["signal"], stream_id=sid))
        await comm.send_to(text_data=_to_platform(EXAMPLES["heartbeat"], worker_id="contract"))
        await comm.send_to(text_data=_to_platform(EXAMPLES["stats"], stream_id=sid))
        assert await comm.receive_nothing(timeout=1.0)  # all accepted: no error back
        events = await database_sync_to_async(channel_messages)(viewer)
        started = [m for m in events if m["event"] == "morpheus:render_started"]
        assert started[0]["data"]["offer"]["type"] == "offer"
        row = await StreamStats.objects.filter(stream_id=stream.id).afirst()
        assert row is not None
        assert row.report == REPORT.to_dict()
        assert (await StreamingWorker.objects.aget(pk=worker.pk)).load == 0.5

        # platform -> worker: the user's quality, the client's answer, relayed as is.
        await database_sync_to_async(services.stream_quality_adjust)(stream=stream, quality="2K")
        quality = await _from_platform(comm)
        assert isinstance(quality, QualityRequest)
        assert quality.pinned_quality == "2K"
        group, message = await database_sync_to_async(services.stream_client_signal)(
            user_id=owner.pk,
            session_id=session.id,
            stream_id=sid,
            data={"answer": {"type": "answer", "sdp": "v=0\r\n"}},
        )
        from channels.layers import get_channel_layer

        await get_channel_layer().group_send(group, message)
        answer = await _from_platform(comm)
        assert isinstance(answer, Signal)
        assert answer.sdp == {"type": "answer", "sdp": "v=0\r\n"}

        # A message that breaks the contract: an error the worker can parse.
        await comm.send_to(text_data=_to_platform(EXAMPLES["registered"]))
        error = await _from_platform(comm)
        assert isinstance(error, ErrorMessage)
        assert error.code == "unexpected_type"

        # worker -> platform: the worker stopped the stream itself.
        await comm.send_to(text_data=_to_platform(EXAMPLES["stream_stopped"], stream_id=sid))
        assert await comm.receive_nothing(timeout=1.0)
        stopped = await Stream.objects.aget(pk=stream.id)
        assert stopped.status == Stream.Status.STOPPED
        assert stopped.stop_reason == "connection failed"

        # platform -> worker: a stop for a second stream the user ends.
        again, _ = await database_sync_to_async(services.stream_start)(
            user=owner, session_id=session.id
        )
        assert isinstance(await _from_platform(comm), StreamStart)
        await database_sync_to_async(services.stream_stop)(stream=again)
        stop = await _from_platform(comm)
        assert stop == StreamStop(str(again.id), "user_stopped")
    finally:
        await comm.disconnect()
        await database_sync_to_async(connections.close_all)()


# ---------------------------------------------------------------- the worker side


class _Socket:
    """Where the agent writes: what it sends, parsed as the platform parses it."""

    def __init__(self) -> None:
        self.sent: list[WorkerMessage] = []
        self.arrived = asyncio.Event()

    async def send(self, text: str) -> None:
        self.sent.append(parse_from_worker(text))
        self.arrived.set()

    async def first(self, cls: type) -> Any:
        async with asyncio.timeout(TIMEOUT):
            while not self.of(cls):
                self.arrived.clear()
                await self.arrived.wait()
        return self.of(cls)[0]

    async def close(self) -> None:
        return None

    def of(self, cls: type) -> list[Any]:
        return [m for m in self.sent if isinstance(m, cls)]


async def test_every_platform_message_through_the_worker(caplog: pytest.LogCaptureFixture) -> None:
    from workers.streaming.agent import AgentConfig, WorkerAgent

    agent = WorkerAgent(
        AgentConfig(
            platform_url="http://platform",
            token="t",
            rung_sizes={r: (320, 180) for r in ("4K", "2K", "1080p", "720p")},
            max_fps=30,
        )
    )
    agent._encoders = ["libx264"]
    socket = _Socket()
    agent._ws = socket  # type: ignore[assignment]
    client = RTCPeerConnection()
    try:
        await agent._handle(encode_message(EXAMPLES["registered"]))
        assert agent.registered.is_set()
        assert agent.protocol_version == PROTOCOL_VERSION
        with caplog.at_level("WARNING", logger="workers.streaming.agent"):
            await agent._handle(encode_message(EXAMPLES["error"]))
        assert "bad_value" in caplog.text

        await agent._handle(encode_message(EXAMPLES["stream_start"]))
        offer = await socket.first(Signal)
        assert offer.sdp is not None
        assert offer.sdp["type"] == "offer"
        peer = agent.registry.get("s")
        assert peer is not None
        # The operator's mutes the platform kept arrive with the start.
        assert agent._sessions["sess"].voice.is_muted("5")

        # The client answers through the platform: the worker's peer connects.
        await client.setRemoteDescription(RTCSessionDescription(**offer.sdp))
        await client.setLocalDescription(await client.createAnswer())
        answer = Signal("s", sdp={"type": "answer", "sdp": client.localDescription.sdp})
        await agent._handle(encode_message(answer))
        assert peer.pc.remoteDescription is not None

        assert peer.quality.rung == "2K"
        await agent._handle(encode_message(EXAMPLES["quality"]))
        assert peer.quality.max_rung == "2K"
        assert peer.encoder.config.max_bitrate == 8_000_000
        await agent._handle(encode_message(EXAMPLES["quality_hint"]))
        assert peer.quality.rung == "720p"  # capped for hold_s

        # An operator's mute reaches the session's voices on this worker.
        await agent._handle(encode_message(EXAMPLES["voice_mute"]))
        assert agent._sessions["sess"].voice.is_muted("4")

        # The host's clip change reaches the session's clock on this worker.
        await agent._handle(encode_message(EXAMPLES["clip_change"]))
        assert agent._sessions["sess"].current_clip() == "Walk"

        # Remote poses become avatars; local poses go out at the tick.
        await agent._handle(encode_message(EXAMPLES["remote_poses"]))
        assert "4" in peer._avatars()
        agent._sessions["sess"].update("3", POSE)
        await agent.send_local_poses()
        assert socket.of(WorkerPoses) == [EXAMPLES["poses"]]

        # The real peer's stats report passes the platform's strict parser.
        # (protocol version 3: in the next stats_batch, which the tick sends)
        await peer.collect_stats()
        await asyncio.wait([t for t in agent._tasks if not t.done()], timeout=TIMEOUT)
        await agent.send_stats_batch()
        assert (await socket.first(StatsBatch)).reports[0].stats.rung == "720p"

        await agent._handle(encode_message(EXAMPLES["stream_stop"]))
        assert "s" not in agent.registry
        await asyncio.wait(list(agent._tasks), timeout=TIMEOUT)  # the closed handler's task
        assert socket.of(StreamStopped) == []  # stopped by the platform: nothing to report

        # A platform message the worker must never get is refused, not acted on.
        with caplog.at_level("WARNING", logger="workers.streaming.agent"):
            await agent._handle(encode_message(EXAMPLES["register"]))
        assert "unexpected_type" in caplog.text
    finally:
        await client.close()
        await agent.registry.close_all()
