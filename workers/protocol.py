"""Message schemas shared by the platform and the workers.

Pure Python on purpose: the Django side and the streaming worker both import this module,
so it must not import Django, aiortc, numpy or anything heavy. Every ``parse_*`` function
takes untrusted input (already JSON-decoded, or raw text/bytes where noted) and either
returns a typed object or raises :class:`ProtocolError` with a stable ``code``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

# Limits. Messages beyond them are rejected instead of trimmed: a client that sends them is
# buggy or hostile, and silently accepting half a message hides the bug.
MAX_POSE_BYTES: Final = 4096
MAX_CONTROL_BYTES: Final = 256 * 1024  # SDP offers with many candidates run to ~10 KiB
MAX_POSITION_M: Final = 1e4
QUAT_NORM_TOLERANCE: Final = 0.1  # |q| must be within 10% of 1; we renormalise afterwards
MAX_ID_LEN: Final = 128

# Quality ladder: resolution per eye; the stream is both eyes side by side.
RUNGS: Final[dict[str, tuple[int, int]]] = {
    "4K": (3840, 2160),
    "2K": (2560, 1440),
    "1080p": (1920, 1080),
    "720p": (1280, 720),
}
# Highest first; quality controllers walk this list.
RUNG_ORDER: Final[tuple[str, ...]] = ("4K", "2K", "1080p", "720p")
# Default bitrate (bits/s) per rung for the stereo stream at 90 fps. Sized for x264
# ultrafast/zerolatency, which spends more bits than slower presets for the same quality.
DEFAULT_BITRATES: Final[dict[str, int]] = {
    "4K": 80_000_000,
    "2K": 40_000_000,
    "1080p": 25_000_000,
    "720p": 12_000_000,
}
CODECS: Final[tuple[str, ...]] = ("h264",)


class ProtocolError(ValueError):
    """A message failed validation. ``code`` is stable and safe to send back to the peer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def stereo_size(rung: str) -> tuple[int, int]:
    """Frame size (width, height) of the side-by-side stereo picture for a rung."""
    w, h = RUNGS[rung]
    return 2 * w, h


def scaled_bitrate(rung: str, fps: float) -> int:
    """Default bitrate for ``rung`` scaled linearly from the 90 fps reference."""
    return int(DEFAULT_BITRATES[rung] * max(fps, 1.0) / 90.0)


# ---------------------------------------------------------------- primitive validators


def _decode(raw: str | bytes | dict[str, Any], limit: int) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, (str, bytes)):
        raise ProtocolError("bad_type", "message must be a JSON object")
    if len(raw) > limit:
        raise ProtocolError("too_large", f"message larger than {limit} bytes")
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError("bad_json", "message is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("bad_type", "message must be a JSON object")
    return obj


def _number(value: Any, name: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    # bool is an int subclass; a pose with `true` in it is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError("bad_type", f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError as exc:  # an int past 1.8e308 (JSON has no size limit on them)
        raise ProtocolError("bad_value", f"{name} must be finite") from exc
    if not math.isfinite(number):
        raise ProtocolError("bad_value", f"{name} must be finite")
    if not lo <= number <= hi:
        raise ProtocolError("out_of_range", f"{name} out of range [{lo}, {hi}]")
    return number


def _int(value: Any, name: str, *, lo: int = 0, hi: int = 2**53) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError("bad_type", f"{name} must be an integer")
    if not lo <= value <= hi:
        raise ProtocolError("out_of_range", f"{name} out of range [{lo}, {hi}]")
    return value


def _str(value: Any, name: str, *, max_len: int = MAX_ID_LEN, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ProtocolError("bad_type", f"{name} must be a string")
    if len(value) > max_len or (not value and not allow_empty):
        raise ProtocolError("bad_value", f"{name} must be 1..{max_len} characters")
    return value


def _vector(value: Any, name: str, n: int, *, bound: float = math.inf) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ProtocolError("bad_type", f"{name} must be a list of {n} numbers")
    return tuple(_number(v, f"{name}[{i}]", lo=-bound, hi=bound) for i, v in enumerate(value))


def _quat(value: Any, name: str) -> tuple[float, float, float, float]:
    x, y, z, w = _vector(value, name, 4, bound=2.0)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if abs(norm - 1.0) > QUAT_NORM_TOLERANCE:
        raise ProtocolError("bad_value", f"{name} is not a unit quaternion (|q|={norm:.3f})")
    return (x / norm, y / norm, z / norm, w / norm)


def _obj(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError("bad_type", f"{name} must be an object")
    return value


# ---------------------------------------------------------------- poses


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


def _rigid(value: Any, name: str) -> RigidPose:
    obj = _obj(value, name)
    p = _vector(obj.get("p"), f"{name}.p", 3, bound=MAX_POSITION_M)
    return RigidPose((p[0], p[1], p[2]), _quat(obj.get("q"), f"{name}.q"))


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


def _quat_mul(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> tuple[float, float, float, float]:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return (
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    )


def compose(parent: RigidPose, child: RigidPose) -> RigidPose:
    """``child`` given in ``parent``'s frame, expressed in the frame ``parent`` lives in."""
    x, y, z, w = parent.q
    vx, vy, vz = child.p
    # v' = v + 2w (u x v) + 2 u x (u x v)
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    rotated = (
        vx + w * tx + (y * tz - z * ty),
        vy + w * ty + (z * tx - x * tz),
        vz + w * tz + (x * ty - y * tx),
    )
    p = (parent.p[0] + rotated[0], parent.p[1] + rotated[1], parent.p[2] + rotated[2])
    return RigidPose(p, _quat_mul(parent.q, child.q))


def _parse_xr(value: Any) -> XrInput:
    obj = _obj(value, "xr")
    origin = _rigid(obj["origin"], "xr.origin") if obj.get("origin") is not None else None
    kinds: dict[str, str] = {}
    for side, kind in _obj(obj.get("kinds", {}), "xr.kinds").items():
        if side not in ("left", "right") or kind not in INPUT_KINDS:
            raise ProtocolError("bad_value", "xr.kinds maps left/right to controller/hand")
        kinds[side] = kind
    events: dict[str, tuple[int, int]] = {}
    for side, counts in _obj(obj.get("ev", {}), "xr.ev").items():
        if side not in ("left", "right") or not isinstance(counts, list) or len(counts) != 2:
            raise ProtocolError("bad_value", "xr.ev maps left/right to [select, squeeze] counts")
        events[side] = (
            _int(counts[0], f"xr.ev.{side}[0]", hi=MAX_EVENT_COUNT),
            _int(counts[1], f"xr.ev.{side}[1]", hi=MAX_EVENT_COUNT),
        )
    return XrInput(origin, kinds, events)


def parse_pose(raw: str | bytes | dict[str, Any]) -> Pose:
    """Validate a pose message from the ``pose`` data channel (or a dict already decoded)."""
    obj = _decode(raw, MAX_POSE_BYTES)
    p = _vector(obj.get("p"), "p", 3, bound=MAX_POSITION_M)
    q = _quat(obj.get("q"), "q")
    t = _number(obj.get("t"), "t", lo=0.0, hi=1e15)
    seq = _int(obj.get("seq"), "seq")
    hands: dict[str, RigidPose] = {}
    if obj.get("hands") is not None:
        raw_hands = _obj(obj["hands"], "hands")
        for side, value in raw_hands.items():
            if side not in ("left", "right"):
                raise ProtocolError("bad_value", "hands keys must be left/right")
            if value is not None:
                hands[side] = _rigid(value, f"hands.{side}")
    proj = None
    if obj.get("proj") is not None:
        raw_proj = obj["proj"]
        if not isinstance(raw_proj, list) or len(raw_proj) != 2:
            raise ProtocolError("bad_type", "proj must be two 16-number matrices")
        proj = (
            _vector(raw_proj[0], "proj[0]", 16, bound=1e6),
            _vector(raw_proj[1], "proj[1]", 16, bound=1e6),
        )
    head = (p[0], p[1], p[2])
    for side, hand in hands.items():
        if math.dist(hand.p, head) > MAX_HAND_REACH_M:
            raise ProtocolError("out_of_range", f"hands.{side} is more than 3 m from the head")
    xr = _parse_xr(obj["xr"]) if obj.get("xr") is not None else None
    return Pose(head, q, t, seq, hands, proj, xr)


# ---------------------------------------------------------------- frame metadata

STAGES: Final = ("pose_rx", "render_start", "render_end", "convert_end", "encode_end", "send")


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
    obj = _decode(raw, MAX_POSE_BYTES)
    times = _obj(obj.get("t"), "t")
    t: dict[str, float] = {k: _number(times[k], f"t.{k}", lo=0.0) for k in STAGES if k in times}
    rung = obj.get("rung", "")
    return FrameMeta(
        frame_id=_int(obj.get("frame_id"), "frame_id"),
        pose_seq=_int(obj.get("pose_seq"), "pose_seq"),
        pose=_rigid(obj.get("pose"), "pose"),
        t=t,
        rung=_str(rung, "rung", allow_empty=True),
        keyframe=bool(obj.get("keyframe", False)),
        scale=_number(obj.get("scale", 1.0), "scale", lo=0.05, hi=1.0),
        views=_int(obj.get("views", 2), "views", lo=1, hi=2),
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
    obj = _decode(raw, MAX_POSE_BYTES)
    return ClientFeedback(
        decode_ms=_number(obj.get("decode_ms", 0.0), "decode_ms", lo=0.0, hi=1e5),
        display_ms=_number(obj.get("display_ms", 0.0), "display_ms", lo=0.0, hi=1e5),
        frames_decoded=_int(obj.get("frames_decoded", 0), "frames_decoded"),
        frames_dropped=_int(obj.get("frames_dropped", 0), "frames_dropped"),
        display_hz=_number(obj.get("display_hz", 0.0), "display_hz", lo=0.0, hi=1000.0),
        views=_int(obj.get("views", 2), "views", lo=1, hi=2),
    )


# ---------------------------------------------------------------- worker <-> platform
# The whole contract of the worker control socket (``/ws/morpheus/worker/``): the
# subprotocol, the close codes, the version negotiated at register and every message, with
# its direction. The platform's consumer and the worker's agent use nothing else.
#
# Every message is a JSON object with a "type". Worker -> platform: register, heartbeat,
# signal (offer, candidate), stats, stream_stopped, poses. Platform -> worker: registered,
# error, stream_start, stream_stop, signal (answer, candidate), quality, quality_hint,
# remote_poses.

SUBPROTOCOL: Final = "vrplatform.v1"  # every platform WebSocket (sessions, workers, dashboard)
BEARER_PREFIX: Final = "bearer."  # the token rides as a second subprotocol, never in the URL
# Versions of the worker message set. A worker lists those it speaks in ``register``; the
# platform answers ``registered`` with the highest one both speak, or ``error``
# ``unsupported_version`` and closes with CLOSE_UNSUPPORTED_VERSION. A register without
# ``versions`` is a version-1 worker (untyped stats reports), which this platform refuses.
PROTOCOL_VERSION: Final = 2
SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (2,)

# Close codes of every platform socket, one meaning each (RFC 6455 leaves 4000-4999 to us;
# the last three digits follow HTTP where one fits).
CLOSE_SESSION_ENDED: Final = 4000  # sessions: the session ended
CLOSE_UNAUTHORIZED: Final = 4401  # bad, missing or expired token: retrying will not help
CLOSE_FORBIDDEN: Final = 4403  # authenticated, but not allowed here
CLOSE_NOT_FOUND: Final = 4404  # no such session
CLOSE_IDLE: Final = 4408  # sessions: nothing received for too long
CLOSE_SUPERSEDED: Final = 4409  # workers: the same worker connected again elsewhere
CLOSE_DECLARED_DEAD: Final = 4410  # workers: silent too long, its streams moved; register again
CLOSE_UNSUPPORTED_VERSION: Final = 4426  # workers: no protocol version in common
CLOSE_RATE_LIMITED: Final = 4429  # too many messages, or too many bad ones
CLOSE_CODES: Final[dict[int, str]] = {
    CLOSE_SESSION_ENDED: "session_ended",
    CLOSE_UNAUTHORIZED: "unauthorized",
    CLOSE_FORBIDDEN: "forbidden",
    CLOSE_NOT_FOUND: "not_found",
    CLOSE_IDLE: "idle_timeout",
    CLOSE_SUPERSEDED: "superseded",
    CLOSE_DECLARED_DEAD: "declared_dead",
    CLOSE_UNSUPPORTED_VERSION: "unsupported_version",
    CLOSE_RATE_LIMITED: "rate_limited",
}

# Stages of one frame, in order, as ``frame_stages`` derives them from ``FrameMeta.t``:
# queue (pose received -> render starts), render (GPU draw + read back), convert (RGB ->
# YUV), encode, send (encoded -> handed to the network).
FRAME_STAGES: Final = ("queue", "render", "convert", "encode", "send")
MAX_REJECT_CODES: Final = 32
MAX_REMOTE_POSES: Final = 256  # participants per session a worker is told about


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


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0


@dataclass(frozen=True, slots=True)
class PoseCounts:
    """Pose messages on the stream's data channel since it started."""

    received: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reject code -> count


@dataclass(frozen=True, slots=True)
class ClientStats:
    """What the client last fed back (``ClientFeedback``); None where it never did."""

    decode_ms: float | None = None
    display_ms: float | None = None
    frames_dropped: int | None = None


@dataclass(frozen=True, slots=True)
class ForecastReport:
    """The worker's short-horizon forecast of the link (see workers/streaming/forecast.py).
    ``recommended_rung``: a lower rung the worker stepped down to ahead of trouble."""

    bandwidth_bps: float | None = None
    delay_ms: float | None = None
    horizon_s: float = 0.0
    confidence: float = 0.0
    recommended_rung: str | None = None
    reason: str = ""
    rung: str = ""
    needed_bps: float = 0.0
    delay_slope_ms_per_s: float = 0.0
    overuse: bool = False


@dataclass(frozen=True, slots=True)
class StreamReport:
    """One stream's stats, sent by its worker about once a second.

    ``latency_ms`` is THE latency of the stream everywhere (API, metrics, dashboard): pose
    received on the worker -> frame handed to the network, measured per frame
    (:func:`frame_latency_ms`). ``stage_ms`` holds the :data:`FRAME_STAGES` of the same
    frames, so their p50s add up to about the latency's.
    """

    t: float  # worker wall clock, ms since the epoch
    rung: str
    fps: float = 0.0
    target_fps: float = 0.0
    frames_sent: int = 0
    frames_dropped: int = 0
    bitrate_bps: int = 0
    target_bitrate_bps: int = 0
    remb_bps: int | None = None
    loss: float | None = None  # 0..1
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    size: tuple[int, int] | None = None  # stereo frame width, height
    # The render-time governor: below 1 the picture is rendered and sent smaller to hold the
    # frame rate; ``paced_fps`` is the rate the stream is paced at (at most the client display's).
    render_scale: float = 1.0
    render_scale_changes: int = 0
    paced_fps: float = 0.0
    encoder: str = ""
    encoder_reason: str = ""
    keyframes: int = 0
    stage_ms: dict[str, Percentiles] = field(default_factory=dict)
    latency_ms: Percentiles | None = None
    pose: PoseCounts = field(default_factory=PoseCounts)
    client: ClientStats = field(default_factory=ClientStats)
    forecast: ForecastReport | None = None
    # XR input (select/squeeze counts, field of view) and voice (slots, forwarded, muted) as
    # summarised by the worker; free-form but bounded (MAX_SUMMARY_BYTES each).
    xr: dict[str, Any] = field(default_factory=dict)
    voice: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it (what the platform stores): lists, not tuples."""
        out = asdict(self)
        if self.size is not None:
            out["size"] = list(self.size)
        return out


@dataclass(slots=True)
class Register:
    worker_id: str
    capabilities: dict[str, Any]
    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    type: str = "register"


@dataclass(slots=True)
class Registered:
    """Platform -> worker: registered; ``version`` is the one both sides now speak."""

    worker: str
    version: int = PROTOCOL_VERSION
    type: str = "registered"


@dataclass(slots=True)
class ErrorMessage:
    """Platform -> worker: a message was refused (``code`` as in ProtocolError/PlatformError)."""

    code: str
    message: str = ""
    type: str = "error"


@dataclass(slots=True)
class Heartbeat:
    worker_id: str
    streams: int = 0
    load: float = 0.0
    type: str = "heartbeat"


@dataclass(slots=True)
class StreamStart:
    stream_id: str
    session_id: str
    scene_url: str
    quality: str = "1080p"
    codec: str = "h264"
    participant_id: str = ""
    target_fps: int = 90
    max_quality: str | None = None
    pinned_quality: str | None = None
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    # Participants of the session whose voice an operator muted (see VoiceMute): a worker that
    # starts streaming the session drops their audio from the first frame.
    voice_muted: list[str] = field(default_factory=list)
    # The session's animation clip (ClipChange); "": the scene's default clip.
    clip: str = ""
    # Scene units per metre of the viewer (workers/rendering/spawn.py): eye separation, near
    # plane and avatar sizes grow with it, so a scene authored in centimetres is life-size.
    world_scale: float = 1.0
    type: str = "stream_start"


@dataclass(slots=True)
class StreamStop:
    stream_id: str
    reason: str = ""
    type: str = "stream_stop"


@dataclass(slots=True)
class StreamStopped:
    stream_id: str
    reason: str = ""
    type: str = "stream_stopped"


@dataclass(slots=True)
class Signal:
    """SDP (``{"type": "offer"|"answer", "sdp": str}``) or one ICE candidate for a stream.
    Workers send offers, the platform relays the client's answers."""

    stream_id: str
    sdp: dict[str, str] | None = None
    candidate: dict[str, Any] | None = None
    type: str = "signal"


@dataclass(slots=True)
class QualityRequest:
    """The user's cap and/or pin; ``None`` clears it."""

    stream_id: str
    max_quality: str | None = None
    pinned_quality: str | None = None
    max_bitrate_kbps: int | None = None  # the user's bitrate ceiling; None: no ceiling
    type: str = "quality"


@dataclass(slots=True)
class QualityHint:
    """Platform → worker: cap the stream at ``max_quality`` for ``hold_s`` seconds (an
    operator's or another component's forecast; the user's pin still wins)."""

    stream_id: str
    max_quality: str
    hold_s: float
    type: str = "quality_hint"


@dataclass(slots=True)
class VoiceMute:
    """Platform -> worker: an operator muted (or unmuted) a participant's voice in a session;
    the worker drops that participant's audio before it reaches anyone."""

    session_id: str
    participant_id: str
    muted: bool = True
    type: str = "voice_mute"


@dataclass(slots=True)
class ClipChange:
    """Platform -> worker: the session's host switched the animation clip; every viewer of the
    session on this worker now sees ``clip`` from its start ("": the scene's default clip)."""

    session_id: str
    clip: str = ""
    type: str = "clip_change"


@dataclass(slots=True)
class StatsReport:
    stream_id: str
    stats: StreamReport
    type: str = "stats"


@dataclass(slots=True)
class WorkerPoses:
    """Worker -> platform, at the session tick: the latest pose of each participant of
    ``session_id`` this worker streams (so the session's other workers can draw them)."""

    session_id: str
    poses: dict[str, Pose]
    type: str = "poses"


@dataclass(slots=True)
class RemotePoses:
    """Platform -> worker, at the session tick: the latest pose of each participant of
    ``session_id`` this worker does NOT stream. ``t`` is the platform's wall clock (ms)."""

    session_id: str
    poses: dict[str, Pose]
    t: float = 0.0
    type: str = "remote_poses"


WorkerMessage = (
    Register
    | Registered
    | ErrorMessage
    | Heartbeat
    | StreamStart
    | StreamStop
    | StreamStopped
    | Signal
    | QualityRequest
    | QualityHint
    | StatsReport
    | WorkerPoses
    | RemotePoses
    | VoiceMute
    | ClipChange
)
FROM_WORKER: Final = frozenset(
    {"register", "heartbeat", "signal", "stats", "stream_stopped", "poses"}
)
FROM_PLATFORM: Final = frozenset(
    {
        "registered",
        "error",
        "stream_start",
        "stream_stop",
        "signal",
        "quality",
        "quality_hint",
        "remote_poses",
        "voice_mute",
        "clip_change",
    }
)


def negotiate_version(versions: tuple[int, ...]) -> int | None:
    """The highest version both sides speak, or None."""
    common = set(versions) & set(SUPPORTED_VERSIONS)
    return max(common) if common else None


def message_to_dict(message: WorkerMessage) -> dict[str, Any]:
    if isinstance(message, (WorkerPoses, RemotePoses)):
        out: dict[str, Any] = {
            "type": message.type,
            "session_id": message.session_id,
            "poses": {k: v.to_dict() for k, v in message.poses.items()},
        }
        if isinstance(message, RemotePoses):
            out["t"] = message.t
        return out
    out = asdict(message)
    if isinstance(message, Register):
        out["versions"] = list(message.versions)
    return out


def encode_message(message: WorkerMessage) -> str:
    """The wire text of a message (compact JSON)."""
    return json.dumps(message_to_dict(message), separators=(",", ":"))


def _rung(value: Any, name: str, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if value not in RUNGS:
        raise ProtocolError("bad_value", f"{name} must be one of {', '.join(RUNG_ORDER)}")
    return str(value)


def _parse_sdp(value: Any) -> dict[str, str]:
    obj = _obj(value, "sdp")
    kind = obj.get("type")
    if kind not in ("offer", "answer"):
        raise ProtocolError("bad_value", "sdp.type must be offer or answer")
    return {"type": kind, "sdp": _str(obj.get("sdp"), "sdp.sdp", max_len=MAX_CONTROL_BYTES)}


def _parse_candidate(value: Any) -> dict[str, Any]:
    obj = _obj(value, "candidate")
    out: dict[str, Any] = {"candidate": _str(obj.get("candidate"), "candidate", max_len=1024)}
    if obj.get("sdpMid") is not None:
        out["sdpMid"] = _str(obj["sdpMid"], "sdpMid", max_len=64)
    if obj.get("sdpMLineIndex") is not None:
        out["sdpMLineIndex"] = _int(obj["sdpMLineIndex"], "sdpMLineIndex", hi=64)
    return out


def _opt_number(obj: Mapping[str, Any], key: str, *, lo: float = 0.0, hi: float = 1e12) -> Any:
    value = obj.get(key)
    return None if value is None else _number(value, key, lo=lo, hi=hi)


def _percentiles(value: Any, name: str) -> Percentiles:
    obj = _obj(value, name)
    p = [_number(obj.get(q, 0.0), f"{name}.{q}", lo=-1e6, hi=1e6) for q in ("p50", "p95", "p99")]
    return Percentiles(p[0], p[1], p[2])


def _parse_forecast(value: Any) -> ForecastReport:
    obj = _obj(value, "forecast")
    return ForecastReport(
        bandwidth_bps=_opt_number(obj, "bandwidth_bps"),
        delay_ms=_opt_number(obj, "delay_ms", lo=-1e6, hi=1e6),
        horizon_s=_number(obj.get("horizon_s", 0.0), "horizon_s", lo=0.0, hi=600.0),
        confidence=_number(obj.get("confidence", 0.0), "confidence", lo=0.0, hi=1.0),
        recommended_rung=_rung(obj.get("recommended_rung"), "recommended_rung", optional=True),
        reason=_str(obj.get("reason", ""), "reason", max_len=256, allow_empty=True),
        rung=_str(obj.get("rung", ""), "rung", max_len=8, allow_empty=True),
        needed_bps=_number(obj.get("needed_bps", 0.0), "needed_bps", lo=0.0, hi=1e12),
        delay_slope_ms_per_s=_number(
            obj.get("delay_slope_ms_per_s", 0.0), "delay_slope_ms_per_s", lo=-1e6, hi=1e6
        ),
        overuse=obj.get("overuse") is True,
    )


MAX_SUMMARY_BYTES: Final = 4096


def _summary(value: Any, name: str) -> dict[str, Any]:
    obj = _obj(value or {}, name)
    if len(json.dumps(obj, separators=(",", ":"))) > MAX_SUMMARY_BYTES:
        raise ProtocolError("too_large", f"{name} is over {MAX_SUMMARY_BYTES} bytes")
    return obj


def parse_stream_report(value: Any) -> StreamReport:
    """Validate the ``stats`` body of a stats message (strict: every known key is typed)."""
    obj = _obj(value, "stats")
    stage_ms: dict[str, Percentiles] = {}
    for stage, values in _obj(obj.get("stage_ms") or {}, "stage_ms").items():
        if stage not in FRAME_STAGES:
            raise ProtocolError("bad_value", f"stage_ms keys must be in {FRAME_STAGES}")
        stage_ms[stage] = _percentiles(values, f"stage_ms.{stage}")
    pose = _obj(obj.get("pose") or {}, "pose")
    rejected = _obj(pose.get("rejected") or {}, "pose.rejected")
    if len(rejected) > MAX_REJECT_CODES:
        raise ProtocolError("too_large", "too many pose reject codes")
    client = _obj(obj.get("client") or {}, "client")
    size = obj.get("size")
    return StreamReport(
        t=_number(obj.get("t"), "t", lo=0.0, hi=1e15),
        rung=str(_rung(obj.get("rung"), "rung", optional=False)),
        fps=_number(obj.get("fps", 0.0), "fps", lo=0.0, hi=1e3),
        target_fps=_number(obj.get("target_fps", 0.0), "target_fps", lo=0.0, hi=1e3),
        frames_sent=_int(obj.get("frames_sent", 0), "frames_sent"),
        frames_dropped=_int(obj.get("frames_dropped", 0), "frames_dropped"),
        bitrate_bps=int(_number(obj.get("bitrate_bps", 0), "bitrate_bps", lo=0.0, hi=1e12)),
        target_bitrate_bps=int(
            _number(obj.get("target_bitrate_bps", 0), "target_bitrate_bps", lo=0.0, hi=1e12)
        ),
        remb_bps=None
        if obj.get("remb_bps") is None
        else int(_number(obj["remb_bps"], "remb_bps", lo=0.0, hi=1e12)),
        loss=_opt_number(obj, "loss", hi=1.0),
        rtt_ms=_opt_number(obj, "rtt_ms", hi=1e6),
        jitter_ms=_opt_number(obj, "jitter_ms", hi=1e6),
        size=None
        if size is None
        else (
            int(_vector(size, "size", 2, bound=1e5)[0]),
            int(_vector(size, "size", 2, bound=1e5)[1]),
        ),
        render_scale=_number(obj.get("render_scale", 1.0), "render_scale", lo=0.05, hi=1.0),
        render_scale_changes=_int(obj.get("render_scale_changes", 0), "render_scale_changes"),
        paced_fps=_number(obj.get("paced_fps", 0.0), "paced_fps", lo=0.0, hi=1e3),
        encoder=_str(obj.get("encoder", ""), "encoder", max_len=32, allow_empty=True),
        encoder_reason=_str(
            obj.get("encoder_reason", ""), "encoder_reason", max_len=256, allow_empty=True
        ),
        keyframes=_int(obj.get("keyframes", 0), "keyframes"),
        stage_ms=stage_ms,
        latency_ms=None
        if obj.get("latency_ms") is None
        else _percentiles(obj["latency_ms"], "latency_ms"),
        pose=PoseCounts(
            received=_int(pose.get("received", 0), "pose.received"),
            accepted=_int(pose.get("accepted", 0), "pose.accepted"),
            rejected={
                _str(k, "pose.rejected key", max_len=32): _int(v, f"pose.rejected.{k}")
                for k, v in rejected.items()
            },
        ),
        client=ClientStats(
            decode_ms=_opt_number(client, "decode_ms", hi=1e5),
            display_ms=_opt_number(client, "display_ms", hi=1e5),
            frames_dropped=None
            if client.get("frames_dropped") is None
            else _int(client["frames_dropped"], "client.frames_dropped"),
        ),
        forecast=None if obj.get("forecast") is None else _parse_forecast(obj["forecast"]),
        xr=_summary(obj.get("xr"), "xr"),
        voice=_summary(obj.get("voice"), "voice"),
    )


def _parse_pose_map(value: Any) -> dict[str, Pose]:
    obj = _obj(value, "poses")
    if len(obj) > MAX_REMOTE_POSES:
        raise ProtocolError("too_large", f"at most {MAX_REMOTE_POSES} poses per message")
    return {_str(k, "participant id"): parse_pose(_obj(v, f"poses.{k}")) for k, v in obj.items()}


def parse_worker_message(raw: str | bytes | dict[str, Any]) -> WorkerMessage:
    """Validate one control message between platform and worker (either direction)."""
    obj = _decode(raw, MAX_CONTROL_BYTES)
    kind = obj.get("type")
    if kind == "register":
        caps = _obj(obj.get("capabilities"), "capabilities")
        raw_versions = obj.get("versions", [1])
        if not isinstance(raw_versions, list) or not 0 < len(raw_versions) <= 16:
            raise ProtocolError("bad_type", "versions must be a list of 1..16 integers")
        versions = tuple(_int(v, "versions[]", lo=1, hi=1000) for v in raw_versions)
        return Register(_str(obj.get("worker_id"), "worker_id"), caps, versions)
    if kind == "registered":
        return Registered(
            _str(obj.get("worker"), "worker"), _int(obj.get("version"), "version", lo=1, hi=1000)
        )
    if kind == "error":
        return ErrorMessage(
            _str(obj.get("code"), "code", max_len=64),
            _str(obj.get("message", ""), "message", max_len=1024, allow_empty=True),
        )
    if kind == "heartbeat":
        return Heartbeat(
            _str(obj.get("worker_id"), "worker_id"),
            _int(obj.get("streams", 0), "streams", hi=10_000),
            _number(obj.get("load", 0.0), "load", lo=0.0, hi=1e3),
        )
    if kind == "stream_start":
        codec = obj.get("codec", "h264")
        if codec not in CODECS:
            raise ProtocolError("bad_value", f"codec must be one of {CODECS}")
        ice = obj.get("ice_servers", [])
        if not isinstance(ice, list) or len(ice) > 8 or not all(isinstance(s, dict) for s in ice):
            raise ProtocolError("bad_type", "ice_servers must be a list of at most 8 objects")
        muted = obj.get("voice_muted", [])
        if not isinstance(muted, list) or len(muted) > MAX_REMOTE_POSES:
            raise ProtocolError("bad_type", f"voice_muted: a list of at most {MAX_REMOTE_POSES}")
        return StreamStart(
            stream_id=_str(obj.get("stream_id"), "stream_id"),
            session_id=_str(obj.get("session_id"), "session_id"),
            scene_url=_str(obj.get("scene_url"), "scene_url", max_len=2048),
            quality=str(_rung(obj.get("quality", "1080p"), "quality", optional=False)),
            codec=codec,
            participant_id=_str(obj.get("participant_id", ""), "participant_id", allow_empty=True),
            target_fps=_int(obj.get("target_fps", 90), "target_fps", lo=1, hi=240),
            max_quality=_rung(obj.get("max_quality"), "max_quality", optional=True),
            pinned_quality=_rung(obj.get("pinned_quality"), "pinned_quality", optional=True),
            ice_servers=ice,
            voice_muted=[_str(p, "voice_muted[]") for p in muted],
            clip=_str(obj.get("clip", ""), "clip", allow_empty=True),
            world_scale=_number(obj.get("world_scale", 1.0), "world_scale", lo=1e-3, hi=1e4),
        )
    if kind in ("stream_stop", "stream_stopped"):
        cls = StreamStop if kind == "stream_stop" else StreamStopped
        reason = _str(obj.get("reason", ""), "reason", max_len=256, allow_empty=True)
        return cls(_str(obj.get("stream_id"), "stream_id"), reason)
    if kind == "signal":
        sdp = _parse_sdp(obj["sdp"]) if obj.get("sdp") is not None else None
        cand = _parse_candidate(obj["candidate"]) if obj.get("candidate") is not None else None
        if (sdp is None) == (cand is None):
            raise ProtocolError("bad_value", "signal carries exactly one of sdp or candidate")
        return Signal(_str(obj.get("stream_id"), "stream_id"), sdp, cand)
    if kind == "quality":
        return QualityRequest(
            _str(obj.get("stream_id"), "stream_id"),
            _rung(obj.get("max_quality"), "max_quality", optional=True),
            _rung(obj.get("pinned_quality"), "pinned_quality", optional=True),
            None
            if obj.get("max_bitrate_kbps") is None
            else _int(obj["max_bitrate_kbps"], "max_bitrate_kbps", lo=100, hi=10_000_000),
        )
    if kind == "quality_hint":
        return QualityHint(
            _str(obj.get("stream_id"), "stream_id"),
            str(_rung(obj.get("max_quality"), "max_quality", optional=False)),
            _number(obj.get("hold_s"), "hold_s", lo=0.0, hi=600.0),
        )
    if kind == "voice_mute":
        muted = obj.get("muted", True)
        if not isinstance(muted, bool):
            raise ProtocolError("bad_type", "muted must be true or false")
        return VoiceMute(
            _str(obj.get("session_id"), "session_id"),
            _str(obj.get("participant_id"), "participant_id"),
            muted,
        )
    if kind == "clip_change":
        return ClipChange(
            _str(obj.get("session_id"), "session_id"),
            _str(obj.get("clip", ""), "clip", allow_empty=True),
        )
    if kind == "stats":
        return StatsReport(
            _str(obj.get("stream_id"), "stream_id"), parse_stream_report(obj.get("stats"))
        )
    if kind == "poses":
        return WorkerPoses(
            _str(obj.get("session_id"), "session_id"), _parse_pose_map(obj.get("poses"))
        )
    if kind == "remote_poses":
        return RemotePoses(
            _str(obj.get("session_id"), "session_id"),
            _parse_pose_map(obj.get("poses")),
            _number(obj.get("t", 0.0), "t", lo=0.0, hi=1e15),
        )
    raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:32]!r}")


def _parse_directed(
    raw: str | bytes | dict[str, Any], allowed: frozenset[str], sender: str
) -> WorkerMessage:
    message = parse_worker_message(raw)
    if message.type not in allowed:
        raise ProtocolError("unexpected_type", f"{sender} does not send {message.type}")
    return message


def parse_from_worker(raw: str | bytes | dict[str, Any]) -> WorkerMessage:
    """A message the platform received from a worker (``unexpected_type`` for the others)."""
    return _parse_directed(raw, FROM_WORKER, "a worker")


def parse_from_platform(raw: str | bytes | dict[str, Any]) -> WorkerMessage:
    """A message a worker received from the platform (``unexpected_type`` for the others)."""
    return _parse_directed(raw, FROM_PLATFORM, "the platform")
