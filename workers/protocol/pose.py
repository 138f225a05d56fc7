"""Poses: the head (and hands) pose a client sends on the ``pose`` data channel, with the
immersive input a WebXR client adds to it, and their validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from workers.protocol.fields import (
    ProtocolError,
    decode,
    integer,
    mapping,
    number,
    unit_quaternion,
    vector,
)
from workers.protocol.geometry import quat_mul, quat_rotate

MAX_POSE_BYTES: Final = 4096
MAX_POSITION_M: Final = 1e4


@dataclass(frozen=True, slots=True)
class RigidPose:
    """Position in metres and orientation quaternion (x, y, z, w), normalised."""

    p: tuple[float, float, float] = (0.0, 0.0, 0.0)
    q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        return {"p": list(self.p), "q": list(self.q)}


@dataclass(frozen=True, slots=True)
class Pose:
    """A head pose from a client. ``t`` is the client's clock in ms (not comparable to ours)."""

    p: tuple[float, float, float] = (0.0, 0.0, 0.0)
    q: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    t: float = 0.0
    seq: int = 0
    hands: dict[str, RigidPose] = field(default_factory=dict)
    # Column-major 4x4 projection per eye (WebXR's ``projectionMatrix``), left then right.
    proj: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    # Immersive extras (locomotion origin, input kinds, event counters); see XrInput below.
    xr: XrInput | None = None

    def rigid(self) -> RigidPose:
        return RigidPose(self.p, self.q)

    def world(self) -> Pose:
        """This pose with the participant's locomotion origin applied: head and hands in scene
        coordinates. Idempotent (the result carries no origin)."""
        if self.xr is None or self.xr.origin is None:
            return self
        origin = self.xr.origin
        head = compose(origin, RigidPose(self.p, self.q))
        hands = {side: compose(origin, hand) for side, hand in self.hands.items()}
        xr = XrInput(None, self.xr.kinds, self.xr.events)
        return Pose(head.p, head.q, self.t, self.seq, hands, self.proj, xr)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"p": list(self.p), "q": list(self.q), "t": self.t, "seq": self.seq}
        if self.hands:
            out["hands"] = {k: v.to_dict() for k, v in self.hands.items()}
        if self.proj is not None:
            out["proj"] = [list(self.proj[0]), list(self.proj[1])]
        if self.xr is not None:
            out["xr"] = self.xr.to_dict()
        return out


def parse_rigid(value: Any, name: str) -> RigidPose:
    """Validate a ``{"p": [x, y, z], "q": [x, y, z, w]}`` pose."""
    obj = mapping(value, name)
    p = vector(obj.get("p"), f"{name}.p", 3, bound=MAX_POSITION_M)
    return RigidPose((p[0], p[1], p[2]), unit_quaternion(obj.get("q"), f"{name}.q"))


# ---------------------------------------------------------------- immersive input (XR)
# What a WebXR client adds to its head pose: how each hand is tracked, how often select and
# squeeze fired (cumulative counters, so a pose lost on the unreliable channel loses no event),
# and the locomotion origin (thumbstick moves, snap turns, teleports) that the worker applies on
# top of the head pose. Head and hands stay in the headset's own reference space.

INPUT_KINDS: Final = ("controller", "hand")
INPUT_EVENTS: Final = ("select", "squeeze")
MAX_HAND_REACH_M: Final = 3.0  # a controller further than this from the head is bogus data
MAX_EVENT_COUNT: Final = 2**31


@dataclass(frozen=True, slots=True)
class XrInput:
    origin: RigidPose | None = None
    kinds: dict[str, str] = field(default_factory=dict)  # side -> controller | hand
    events: dict[str, tuple[int, int]] = field(default_factory=dict)  # side -> (select, squeeze)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.origin is not None:
            out["origin"] = self.origin.to_dict()
        if self.kinds:
            out["kinds"] = dict(self.kinds)
        if self.events:
            out["ev"] = {side: list(counts) for side, counts in self.events.items()}
        return out


def compose(parent: RigidPose, child: RigidPose) -> RigidPose:
    """``child`` given in ``parent``'s frame, expressed in the frame ``parent`` lives in."""
    rotated = quat_rotate(parent.q, child.p)
    p = (parent.p[0] + rotated[0], parent.p[1] + rotated[1], parent.p[2] + rotated[2])
    return RigidPose(p, quat_mul(parent.q, child.q))


def _parse_xr(value: Any) -> XrInput:
    obj = mapping(value, "xr")
    origin = parse_rigid(obj["origin"], "xr.origin") if obj.get("origin") is not None else None
    kinds: dict[str, str] = {}
    for side, kind in mapping(obj.get("kinds", {}), "xr.kinds").items():
        if side not in ("left", "right") or kind not in INPUT_KINDS:
            raise ProtocolError("bad_value", "xr.kinds maps left/right to controller/hand")
        kinds[side] = kind
    events: dict[str, tuple[int, int]] = {}
    for side, counts in mapping(obj.get("ev", {}), "xr.ev").items():
        if side not in ("left", "right") or not isinstance(counts, list) or len(counts) != 2:
            raise ProtocolError("bad_value", "xr.ev maps left/right to [select, squeeze] counts")
        events[side] = (
            integer(counts[0], f"xr.ev.{side}[0]", hi=MAX_EVENT_COUNT),
            integer(counts[1], f"xr.ev.{side}[1]", hi=MAX_EVENT_COUNT),
        )
    return XrInput(origin, kinds, events)


def parse_pose(raw: str | bytes | dict[str, Any]) -> Pose:
    """Validate a pose message from the ``pose`` data channel (or a dict already decoded)."""
    obj = decode(raw, MAX_POSE_BYTES)
    p = vector(obj.get("p"), "p", 3, bound=MAX_POSITION_M)
    q = unit_quaternion(obj.get("q"), "q")
    t = number(obj.get("t"), "t", lo=0.0, hi=1e15)
    seq = integer(obj.get("seq"), "seq")
    hands: dict[str, RigidPose] = {}
    if obj.get("hands") is not None:
        raw_hands = mapping(obj["hands"], "hands")
        for side, value in raw_hands.items():
            if side not in ("left", "right"):
                raise ProtocolError("bad_value", "hands keys must be left/right")
            if value is not None:
                hands[side] = parse_rigid(value, f"hands.{side}")
    proj = None
    if obj.get("proj") is not None:
        raw_proj = obj["proj"]
        if not isinstance(raw_proj, list) or len(raw_proj) != 2:
            raise ProtocolError("bad_type", "proj must be two 16-number matrices")
        proj = (
            vector(raw_proj[0], "proj[0]", 16, bound=1e6),
            vector(raw_proj[1], "proj[1]", 16, bound=1e6),
        )
    head = (p[0], p[1], p[2])
    for side, hand in hands.items():
        if math.dist(hand.p, head) > MAX_HAND_REACH_M:
            raise ProtocolError("out_of_range", f"hands.{side} is more than 3 m from the head")
    xr = _parse_xr(obj["xr"]) if obj.get("xr") is not None else None
    return Pose(head, q, t, seq, hands, proj, xr)
