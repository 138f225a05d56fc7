"""Control messages between the platform and a worker: the whole contract of the worker
control socket (``/ws/morpheus/worker/``) besides what :mod:`workers.protocol.sockets` holds.

Every message is a JSON object with a "type". Worker -> platform: register, heartbeat, signal
(offer, candidate), stats, stream_stopped, poses. Platform -> worker: registered, error,
stream_start, stream_stop, signal (answer, candidate), quality, quality_hint, remote_poses,
voice_mute, clip_change. Each message's dataclass is followed by its parser, registered with
:func:`parses` under its type and sender; :func:`parse_worker_message` looks the type up.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, TypeVar

from workers.protocol.fields import (
    ProtocolError,
    choice,
    decode,
    integer,
    mapping,
    number,
    text,
)
from workers.protocol.ladder import CODECS, rung
from workers.protocol.pose import Pose, parse_pose
from workers.protocol.reports import StreamReport, parse_stream_report
from workers.protocol.sockets import PROTOCOL_VERSION

MAX_CONTROL_BYTES: Final = 256 * 1024  # SDP offers with many candidates run to ~10 KiB
MAX_REMOTE_POSES: Final = 256  # participants per session a worker is told about

Sender = Literal["worker", "platform"]
_Parsed = TypeVar("_Parsed")
# type -> parser of the decoded message; filled by @parses beside each message below.
_PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {}
_SENT_BY: dict[Sender, set[str]] = {"worker": set(), "platform": set()}


def parses(
    kind: str, *, sent_by: tuple[Sender, ...]
) -> Callable[[Callable[[dict[str, Any]], _Parsed]], Callable[[dict[str, Any]], _Parsed]]:
    """Register the decorated function as the parser of messages of type ``kind``, which
    ``sent_by`` may send (see :func:`parse_from_worker`, :func:`parse_from_platform`)."""

    def register(
        parser: Callable[[dict[str, Any]], _Parsed],
    ) -> Callable[[dict[str, Any]], _Parsed]:
        if kind in _PARSERS:
            raise RuntimeError(f"two parsers for message type {kind!r}")
        _PARSERS[kind] = parser
        for sender in sent_by:
            _SENT_BY[sender].add(kind)
        return parser

    return register


# ---------------------------------------------------------------- registration


@dataclass(slots=True)
class Register:
    worker_id: str
    capabilities: dict[str, Any]
    versions: tuple[int, ...] = (PROTOCOL_VERSION,)
    type: str = "register"


@parses("register", sent_by=("worker",))
def _register(obj: dict[str, Any]) -> Register:
    caps = mapping(obj.get("capabilities"), "capabilities")
    raw_versions = obj.get("versions", [1])
    if not isinstance(raw_versions, list) or not 0 < len(raw_versions) <= 16:
        raise ProtocolError("bad_type", "versions must be a list of 1..16 integers")
    versions = tuple(integer(v, "versions[]", lo=1, hi=1000) for v in raw_versions)
    return Register(text(obj.get("worker_id"), "worker_id"), caps, versions)


@dataclass(slots=True)
class Registered:
    """Platform -> worker: registered; ``version`` is the one both sides now speak."""

    worker: str
    version: int = PROTOCOL_VERSION
    type: str = "registered"


@parses("registered", sent_by=("platform",))
def _registered(obj: dict[str, Any]) -> Registered:
    return Registered(
        text(obj.get("worker"), "worker"), integer(obj.get("version"), "version", lo=1, hi=1000)
    )


@dataclass(slots=True)
class ErrorMessage:
    """Platform -> worker: a message was refused (``code`` as in ProtocolError/PlatformError)."""

    code: str
    message: str = ""
    type: str = "error"


@parses("error", sent_by=("platform",))
def _error(obj: dict[str, Any]) -> ErrorMessage:
    return ErrorMessage(
        text(obj.get("code"), "code", max_len=64),
        text(obj.get("message", ""), "message", max_len=1024, allow_empty=True),
    )


@dataclass(slots=True)
class Heartbeat:
    worker_id: str
    streams: int = 0
    load: float = 0.0
    type: str = "heartbeat"


@parses("heartbeat", sent_by=("worker",))
def _heartbeat(obj: dict[str, Any]) -> Heartbeat:
    return Heartbeat(
        text(obj.get("worker_id"), "worker_id"),
        integer(obj.get("streams", 0), "streams", hi=10_000),
        number(obj.get("load", 0.0), "load", lo=0.0, hi=1e3),
    )


# ---------------------------------------------------------------- stream lifecycle


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
    # "relay": gather and use TURN relay candidates only (the platform's ICE_TRANSPORT_POLICY).
    ice_transport_policy: str = "all"
    # Participants of the session whose voice an operator muted (see VoiceMute): a worker that
    # starts streaming the session drops their audio from the first frame.
    voice_muted: list[str] = field(default_factory=list)
    # The session's animation clip (ClipChange); "": the scene's default clip.
    clip: str = ""
    # Scene units per metre of the viewer (workers/rendering/spawn.py): eye separation, near
    # plane and avatar sizes grow with it, so a scene authored in centimetres is life-size.
    world_scale: float = 1.0
    type: str = "stream_start"


@parses("stream_start", sent_by=("platform",))
def _stream_start(obj: dict[str, Any]) -> StreamStart:
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
        stream_id=text(obj.get("stream_id"), "stream_id"),
        session_id=text(obj.get("session_id"), "session_id"),
        scene_url=text(obj.get("scene_url"), "scene_url", max_len=2048),
        quality=str(rung(obj.get("quality", "1080p"), "quality", optional=False)),
        codec=codec,
        participant_id=text(obj.get("participant_id", ""), "participant_id", allow_empty=True),
        target_fps=integer(obj.get("target_fps", 90), "target_fps", lo=1, hi=240),
        max_quality=rung(obj.get("max_quality"), "max_quality", optional=True),
        pinned_quality=rung(obj.get("pinned_quality"), "pinned_quality", optional=True),
        ice_servers=ice,
        ice_transport_policy=choice(
            obj.get("ice_transport_policy", "all"), "ice_transport_policy", ("all", "relay")
        ),
        voice_muted=[text(p, "voice_muted[]") for p in muted],
        clip=text(obj.get("clip", ""), "clip", allow_empty=True),
        world_scale=number(obj.get("world_scale", 1.0), "world_scale", lo=1e-3, hi=1e4),
    )


@dataclass(slots=True)
class StreamStop:
    """Platform -> worker: stop ``stream_id``."""

    stream_id: str
    reason: str = ""
    type: str = "stream_stop"


@dataclass(slots=True)
class StreamStopped:
    """Worker -> platform: ``stream_id`` stopped; ``reason`` says why."""

    stream_id: str
    reason: str = ""
    type: str = "stream_stopped"


@parses("stream_stop", sent_by=("platform",))
@parses("stream_stopped", sent_by=("worker",))
def _stream_stop(obj: dict[str, Any]) -> StreamStop | StreamStopped:
    cls = StreamStop if obj["type"] == "stream_stop" else StreamStopped
    reason = text(obj.get("reason", ""), "reason", max_len=256, allow_empty=True)
    return cls(text(obj.get("stream_id"), "stream_id"), reason)


# ---------------------------------------------------------------- signalling


@dataclass(slots=True)
class Signal:
    """SDP (``{"type": "offer"|"answer", "sdp": str}``) or one ICE candidate for a stream.
    Workers send offers, the platform relays the client's answers."""

    stream_id: str
    sdp: dict[str, str] | None = None
    candidate: dict[str, Any] | None = None
    type: str = "signal"


def _parse_sdp(value: Any) -> dict[str, str]:
    obj = mapping(value, "sdp")
    kind = obj.get("type")
    if kind not in ("offer", "answer"):
        raise ProtocolError("bad_value", "sdp.type must be offer or answer")
    return {"type": kind, "sdp": text(obj.get("sdp"), "sdp.sdp", max_len=MAX_CONTROL_BYTES)}


def _parse_candidate(value: Any) -> dict[str, Any]:
    obj = mapping(value, "candidate")
    out: dict[str, Any] = {"candidate": text(obj.get("candidate"), "candidate", max_len=1024)}
    if obj.get("sdpMid") is not None:
        out["sdpMid"] = text(obj["sdpMid"], "sdpMid", max_len=64)
    if obj.get("sdpMLineIndex") is not None:
        out["sdpMLineIndex"] = integer(obj["sdpMLineIndex"], "sdpMLineIndex", hi=64)
    return out


@parses("signal", sent_by=("worker", "platform"))
def _signal(obj: dict[str, Any]) -> Signal:
    sdp = _parse_sdp(obj["sdp"]) if obj.get("sdp") is not None else None
    cand = _parse_candidate(obj["candidate"]) if obj.get("candidate") is not None else None
    if (sdp is None) == (cand is None):
        raise ProtocolError("bad_value", "signal carries exactly one of sdp or candidate")
    return Signal(text(obj.get("stream_id"), "stream_id"), sdp, cand)


# ---------------------------------------------------------------- quality


@dataclass(slots=True)
class QualityRequest:
    """The user's cap and/or pin; ``None`` clears it."""

    stream_id: str
    max_quality: str | None = None
    pinned_quality: str | None = None
    max_bitrate_kbps: int | None = None  # the user's bitrate ceiling; None: no ceiling
    type: str = "quality"


@parses("quality", sent_by=("platform",))
def _quality(obj: dict[str, Any]) -> QualityRequest:
    return QualityRequest(
        text(obj.get("stream_id"), "stream_id"),
        rung(obj.get("max_quality"), "max_quality", optional=True),
        rung(obj.get("pinned_quality"), "pinned_quality", optional=True),
        None
        if obj.get("max_bitrate_kbps") is None
        else integer(obj["max_bitrate_kbps"], "max_bitrate_kbps", lo=100, hi=10_000_000),
    )


@dataclass(slots=True)
class QualityHint:
    """Platform → worker: cap the stream at ``max_quality`` for ``hold_s`` seconds (an
    operator's or another component's forecast; the user's pin still wins)."""

    stream_id: str
    max_quality: str
    hold_s: float
    type: str = "quality_hint"


@parses("quality_hint", sent_by=("platform",))
def _quality_hint(obj: dict[str, Any]) -> QualityHint:
    return QualityHint(
        text(obj.get("stream_id"), "stream_id"),
        str(rung(obj.get("max_quality"), "max_quality", optional=False)),
        number(obj.get("hold_s"), "hold_s", lo=0.0, hi=600.0),
    )


# ---------------------------------------------------------------- session-wide


@dataclass(slots=True)
class VoiceMute:
    """Platform -> worker: an operator muted (or unmuted) a participant's voice in a session;
    the worker drops that participant's audio before it reaches anyone."""

    session_id: str
    participant_id: str
    muted: bool = True
    type: str = "voice_mute"


@parses("voice_mute", sent_by=("platform",))
def _voice_mute(obj: dict[str, Any]) -> VoiceMute:
    muted = obj.get("muted", True)
    if not isinstance(muted, bool):
        raise ProtocolError("bad_type", "muted must be true or false")
    return VoiceMute(
        text(obj.get("session_id"), "session_id"),
        text(obj.get("participant_id"), "participant_id"),
        muted,
    )


@dataclass(slots=True)
class ClipChange:
    """Platform -> worker: the session's host switched the animation clip; every viewer of the
    session on this worker now sees ``clip`` from its start ("": the scene's default clip)."""

    session_id: str
    clip: str = ""
    type: str = "clip_change"


@parses("clip_change", sent_by=("platform",))
def _clip_change(obj: dict[str, Any]) -> ClipChange:
    return ClipChange(
        text(obj.get("session_id"), "session_id"),
        text(obj.get("clip", ""), "clip", allow_empty=True),
    )


@dataclass(slots=True)
class StatsReport:
    stream_id: str
    stats: StreamReport
    type: str = "stats"


@parses("stats", sent_by=("worker",))
def _stats(obj: dict[str, Any]) -> StatsReport:
    return StatsReport(
        text(obj.get("stream_id"), "stream_id"), parse_stream_report(obj.get("stats"))
    )


def _parse_pose_map(value: Any) -> dict[str, Pose]:
    obj = mapping(value, "poses")
    if len(obj) > MAX_REMOTE_POSES:
        raise ProtocolError("too_large", f"at most {MAX_REMOTE_POSES} poses per message")
    return {text(k, "participant id"): parse_pose(mapping(v, f"poses.{k}")) for k, v in obj.items()}


@dataclass(slots=True)
class WorkerPoses:
    """Worker -> platform, at the session tick: the latest pose of each participant of
    ``session_id`` this worker streams (so the session's other workers can draw them)."""

    session_id: str
    poses: dict[str, Pose]
    type: str = "poses"


@parses("poses", sent_by=("worker",))
def _worker_poses(obj: dict[str, Any]) -> WorkerPoses:
    return WorkerPoses(text(obj.get("session_id"), "session_id"), _parse_pose_map(obj.get("poses")))


@dataclass(slots=True)
class RemotePoses:
    """Platform -> worker, at the session tick: the latest pose of each participant of
    ``session_id`` this worker does NOT stream. ``t`` is the platform's wall clock (ms)."""

    session_id: str
    poses: dict[str, Pose]
    t: float = 0.0
    type: str = "remote_poses"


@parses("remote_poses", sent_by=("platform",))
def _remote_poses(obj: dict[str, Any]) -> RemotePoses:
    return RemotePoses(
        text(obj.get("session_id"), "session_id"),
        _parse_pose_map(obj.get("poses")),
        number(obj.get("t", 0.0), "t", lo=0.0, hi=1e15),
    )


# ---------------------------------------------------------------- the message set

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
FROM_WORKER: Final = frozenset(_SENT_BY["worker"])
FROM_PLATFORM: Final = frozenset(_SENT_BY["platform"])


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


def parse_worker_message(raw: str | bytes | dict[str, Any]) -> WorkerMessage:
    """Validate one control message between platform and worker (either direction)."""
    obj = decode(raw, MAX_CONTROL_BYTES)
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:32]!r}")
    message: WorkerMessage = parser(obj)
    return message


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
