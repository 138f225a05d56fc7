"""The ``frames`` data channel: per-frame metadata (worker -> client), the client's decode
feedback (client -> worker), and the stages of one frame that latency is made of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from workers.protocol.fields import decode, integer, mapping, number, text
from workers.protocol.pose import MAX_POSE_BYTES, RigidPose, parse_rigid

STAGES: Final = ("pose_rx", "render_start", "render_end", "convert_end", "encode_end", "send")
# Stages of one frame, in order, as ``frame_stages`` derives them from ``FrameMeta.t``:
# queue (pose received -> render starts), render (GPU draw + read back), convert (RGB ->
# YUV), encode, send (encoded -> handed to the network).
FRAME_STAGES: Final = ("queue", "render", "convert", "encode", "send")


@dataclass(slots=True)
class FrameMeta:
    """Sent worker -> client on the ``frames`` channel, one per encoded frame.

    Stage times are the worker's wall clock in ms since the epoch; their differences are the
    stage durations. ``pose_seq`` lets the client find its own send time for the pose.
    """

    frame_id: int
    pose_seq: int
    pose: RigidPose
    t: dict[str, float]
    rung: str = ""
    keyframe: bool = False
    scale: float = 1.0  # render scale: below 1 the picture is smaller than the rung's size
    views: int = 2  # 2: both eyes side by side; 1: one centre view filling the picture

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame_id": self.frame_id,
            "pose_seq": self.pose_seq,
            "pose": self.pose.to_dict(),
            "t": dict(self.t),
            "rung": self.rung,
            "keyframe": self.keyframe,
            "scale": self.scale,
            "views": self.views,
        }


def parse_frame_meta(raw: str | bytes | dict[str, Any]) -> FrameMeta:
    obj = decode(raw, MAX_POSE_BYTES)
    times = mapping(obj.get("t"), "t")
    t: dict[str, float] = {k: number(times[k], f"t.{k}", lo=0.0) for k in STAGES if k in times}
    rung = obj.get("rung", "")
    return FrameMeta(
        frame_id=integer(obj.get("frame_id"), "frame_id"),
        pose_seq=integer(obj.get("pose_seq"), "pose_seq"),
        pose=parse_rigid(obj.get("pose"), "pose"),
        t=t,
        rung=text(rung, "rung", allow_empty=True),
        keyframe=bool(obj.get("keyframe", False)),
        scale=number(obj.get("scale", 1.0), "scale", lo=0.05, hi=1.0),
        views=integer(obj.get("views", 2), "views", lo=1, hi=2),
    )


@dataclass(frozen=True, slots=True)
class ClientFeedback:
    """Client -> worker on the ``frames`` channel: how decoding/display is going."""

    decode_ms: float = 0.0
    display_ms: float = 0.0
    frames_decoded: int = 0
    frames_dropped: int = 0
    display_hz: float = 0.0  # the client's display refresh rate; 0 when not measured
    # How many views the client shows: 1 for a flat desktop view (the worker then renders and
    # sends one centre view: half the pixels), 2 for a headset or a side-by-side view.
    views: int = 2


def parse_client_feedback(raw: str | bytes | dict[str, Any]) -> ClientFeedback:
    obj = decode(raw, MAX_POSE_BYTES)
    return ClientFeedback(
        decode_ms=number(obj.get("decode_ms", 0.0), "decode_ms", lo=0.0, hi=1e5),
        display_ms=number(obj.get("display_ms", 0.0), "display_ms", lo=0.0, hi=1e5),
        frames_decoded=integer(obj.get("frames_decoded", 0), "frames_decoded"),
        frames_dropped=integer(obj.get("frames_dropped", 0), "frames_dropped"),
        display_hz=number(obj.get("display_hz", 0.0), "display_hz", lo=0.0, hi=1000.0),
        views=integer(obj.get("views", 2), "views", lo=1, hi=2),
    )


def frame_stages(t: Mapping[str, float]) -> dict[str, float]:
    """Stage durations (ms) of one frame from its ``FrameMeta.t`` stage timestamps.

    ``encode`` runs from the end of the conversion to the encoded frame, so it includes any
    wait for the encoder to finish the previous frame (the track renders one frame ahead)."""
    out: dict[str, float] = {}
    if t.get("pose_rx"):
        out["queue"] = t["render_start"] - t["pose_rx"]
    out["render"] = t["render_end"] - t["render_start"]
    out["convert"] = t["convert_end"] - t["render_end"]
    out["encode"] = t["encode_end"] - t["convert_end"]
    out["send"] = t["send"] - t["encode_end"]
    return out


def frame_latency_ms(t: Mapping[str, float]) -> float | None:
    """The stream's one latency figure for one frame: pose received on the worker -> frame
    handed to the network (None for a frame rendered without a client pose)."""
    if not t.get("pose_rx") or "send" not in t:
        return None
    return t["send"] - t["pose_rx"]
