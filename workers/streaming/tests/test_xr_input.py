"""Immersive input on the worker: the XR part of the pose schema, the locomotion origin applied
on top of the head pose, select/squeeze counters turned into events, and the bad input of
issue 16 (NaN or absurd controller data, event floods) each answered with an error event on
the ``events`` channel while the stream goes on."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from workers.protocol import Pose, ProtocolError, RigidPose, XrInput, parse_pose
from workers.streaming.frames import read_frame_id
from workers.streaming.peer import PeerRegistry, StreamPeer
from workers.streaming.session import SessionPoses
from workers.streaming.tests.test_peer import TIMEOUT, Client, make_config, registry, start
from workers.streaming.xrinput import EVENT_BURST, InputTracker

__all__ = ["registry"]  # the fixture, shared with test_peer

YAW_90 = [0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)]  # turned left (+Y)


def pose(seq: int, **extra: Any) -> dict[str, Any]:
    return {"p": [0.0, 1.6, 0.0], "q": [0, 0, 0, 1], "t": float(seq), "seq": seq, **extra}


def test_xr_fields_parse_and_the_origin_places_head_and_hands_in_the_scene() -> None:
    msg = pose(
        1,
        p=[1.0, 1.6, 0.0],
        hands={"right": {"p": [1.0, 1.2, -0.5], "q": [0, 0, 0, 1]}},
        xr={
            "origin": {"p": [10.0, 0.0, 5.0], "q": YAW_90},
            "kinds": {"right": "controller", "left": "hand"},
            "ev": {"right": [3, 1]},
        },
    )
    parsed = parse_pose(json.dumps(msg))
    assert parsed.xr == XrInput(
        RigidPose((10.0, 0.0, 5.0), tuple(YAW_90)),  # type: ignore[arg-type]
        {"right": "controller", "left": "hand"},
        {"right": (3, 1)},
    )
    assert parse_pose(parsed.to_dict()) == parsed  # round trip
    world = parsed.world()
    # Turned 90 degrees left, +X in the headset's space is -Z in the scene.
    assert world.p == pytest.approx((10.0, 1.6, 4.0))
    assert world.hands["right"].p == pytest.approx((9.5, 1.2, 4.0))
    assert world.q == pytest.approx(tuple(YAW_90))
    assert world.xr is not None
    assert world.xr.origin is None
    assert world.xr.events == {"right": (3, 1)}
    assert world.world() == world  # idempotent
    plain = parse_pose(pose(2))
    assert plain.world() is plain  # desktop poses carry no origin


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"hands": {"left": {"p": [math.nan, 1, 0], "q": [0, 0, 0, 1]}}}, "bad_value"),
        ({"hands": {"left": {"p": [0, 1, 0], "q": [0, 0, 0, math.inf]}}}, "bad_value"),
        ({"hands": {"right": {"p": [0, 1.6, -40], "q": [0, 0, 0, 1]}}}, "out_of_range"),
        ({"hands": {"right": {"p": [0, 1, 0], "q": [0, 0, 0, 0.2]}}}, "bad_value"),
        ({"xr": {"origin": {"p": [1e7, 0, 0], "q": [0, 0, 0, 1]}}}, "out_of_range"),
        ({"xr": {"kinds": {"right": "tentacle"}}}, "bad_value"),
        ({"xr": {"kinds": {"middle": "hand"}}}, "bad_value"),
        ({"xr": {"ev": {"right": [-1, 0]}}}, "out_of_range"),
        ({"xr": {"ev": {"right": [1]}}}, "bad_value"),
        ({"xr": {"ev": {"right": [1.5, 0]}}}, "bad_type"),
        ({"xr": "yes"}, "bad_type"),
    ],
)
def test_bad_controller_and_hand_data_is_rejected(extra: dict[str, Any], code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_pose(json.dumps(pose(1, **extra)))  # json writes NaN/Infinity as Python reads them
    assert info.value.code == code


def _xr_pose(seq: int, select: int, squeeze: int = 0) -> Pose:
    return parse_pose(pose(seq, xr={"ev": {"right": [select, squeeze]}}))


def test_event_counters_become_events_and_floods_are_cut_arithmetically() -> None:
    tracker = InputTracker()
    assert tracker.observe(_xr_pose(1, 5), 0.0).events == []  # the first counters: baseline
    report = tracker.observe(_xr_pose(2, 7, 1), 0.1)
    assert sorted(report.events) == [("right", "select")] * 2 + [("right", "squeeze")]
    # A hostile jump of 2**31 events: cut to the burst at once, not looped over.
    flood = tracker.observe(_xr_pose(3, 2**31, 1), 0.2)
    assert len(flood.events) <= EVENT_BURST
    assert flood.dropped >= 2**31 - 7 - EVENT_BURST
    # A restarted client counts from zero again: a new baseline, not negative events.
    assert tracker.observe(_xr_pose(4, 0), 10.0).events == []
    assert tracker.observe(_xr_pose(5, 1), 10.1).events == [("right", "select")]
    summary = tracker.summary()
    assert summary["events"]["select"] == 3 + len(flood.events)
    assert summary["events_dropped"] == flood.dropped


class Watch:
    """Error events from the worker's ``events`` channel, and a tick on everything the peer
    does with a pose, so tests wait for a condition instead of sleeping."""

    def __init__(self, peer: StreamPeer, client: Client) -> None:
        self.errors: list[dict[str, Any]] = []
        self.tick = asyncio.Event()
        client.channels["events"].on("message", self._on_error)
        for name in ("pose", "pose_rejected"):
            peer.on(name, lambda *_: self.tick.set())

    def _on_error(self, message: str) -> None:
        error = json.loads(message).get("error")  # the channel also says who speaks where
        if error is not None:
            self.errors.append(error)
            self.tick.set()

    def codes(self) -> list[str]:
        return [e["code"] for e in self.errors]

    async def until(self, check: Any) -> None:
        while not check():
            self.tick.clear()
            await asyncio.wait_for(self.tick.wait(), TIMEOUT)


async def test_bad_xr_input_gets_an_error_event_and_the_stream_goes_on(
    registry: PeerRegistry,
) -> None:
    peer, client = await start(registry)
    watch = Watch(peer, client)
    inputs: list[tuple[str, str]] = []
    peer.on("input", inputs.append)
    channel = client.channels["pose"]
    channel.send(json.dumps(pose(1, hands={"left": {"p": [math.nan, 1, 0], "q": [0, 0, 0, 1]}})))
    channel.send(json.dumps(pose(2, hands={"left": {"p": [0, 1.6, 99], "q": [0, 0, 0, 1]}})))
    await watch.until(lambda: {"bad_value", "out_of_range"} <= set(watch.codes()))
    # Select floods: counters that jump by thousands are cut to what a hand can do.
    channel.send(json.dumps(pose(3, xr={"ev": {"right": [0, 0]}})))
    channel.send(json.dumps(pose(4, xr={"ev": {"right": [1, 1]}})))
    channel.send(json.dumps(pose(5, xr={"ev": {"right": [50_000, 1]}})))
    await watch.until(lambda: "event_flood" in watch.codes())
    assert inputs[:2] == [("right", "select"), ("right", "squeeze")]
    assert len(inputs) <= EVENT_BURST + 3  # plus what the bucket refilled while they travelled
    report = await peer.collect_stats()
    assert report.pose.rejected["bad_value"] == 1
    assert report.pose.rejected["out_of_range"] == 1
    assert report.xr["events"]["select"] == len(inputs) - 1
    assert report.xr["events_dropped"] > 49_000
    # One error per code per second, not one per bad message.
    for seq in range(6, 30):
        channel.send(
            json.dumps(pose(seq, hands={"left": {"p": [math.nan, 0, 0], "q": [0, 0, 0, 1]}}))
        )
    await watch.until(lambda: peer.pose_counts["bad_value"] >= 25)
    assert watch.codes().count("bad_value") <= 2
    assert read_frame_id(await client.frame()) is not None  # the stream survived
    await client.pc.close()


async def test_others_see_the_participant_where_locomotion_took_them(
    registry: PeerRegistry,
) -> None:
    from workers.streaming.encoder import X264, EncoderChoice
    from workers.streaming.frames import PatternSource
    from workers.streaming.tests.test_peer import connect

    poses = SessionPoses()
    peer = StreamPeer(
        make_config(participant_id="alice"),
        PatternSource(),
        encoder_choice=EncoderChoice(X264, "test"),
        session_poses=poses,
    )
    registry.add(peer)
    client = await connect(peer)
    watch = Watch(peer, client)
    client.channels["pose"].send(
        json.dumps(pose(1, xr={"origin": {"p": [4.0, 0.0, -2.0], "q": YAW_90}}))
    )
    await watch.until(lambda: "alice" in poses.others("bob"))
    seen = poses.others("bob")["alice"]
    assert seen.p == pytest.approx((4.0, 1.6, -2.0))
    assert seen.q == pytest.approx(tuple(YAW_90))

    # ...and the frames alice gets are rendered from there (the metadata's render pose).
    # (frame reports ride an unreliable channel: look at whichever arrive, not one in particular)
    def rendered_after_the_pose() -> dict[str, Any] | None:
        return next((m for m in client.metas.values() if m["pose_seq"] == 1), None)

    for _ in range(60):
        if rendered_after_the_pose():
            break
        await client.frame()
    meta = rendered_after_the_pose()
    assert meta is not None
    assert meta["pose"]["p"] == pytest.approx([4.0, 1.6, -2.0])
    await client.pc.close()
