"""Message schemas shared by the platform and the workers.

Pure Python on purpose: the Django side and the streaming worker both import this package,
so it must not import Django, aiortc, numpy or anything heavy. Every ``parse_*`` function
takes untrusted input (already JSON-decoded, or raw text/bytes where noted) and either
returns a typed object or raises :class:`ProtocolError` with a stable ``code``.

One module per concept; this package re-exports their public names, so
``from workers.protocol import X`` is the way to import them:

- :mod:`~workers.protocol.fields`: ``ProtocolError`` and the field validators parsers use
- :mod:`~workers.protocol.ladder`: the quality ladder (rungs, sizes, bitrates, codecs)
- :mod:`~workers.protocol.geometry`: quaternion and node-transform maths (one definition)
- :mod:`~workers.protocol.pose`: head/hand poses and XR input from the ``pose`` channel
- :mod:`~workers.protocol.frames`: the ``frames`` channel and the stages of one frame
- :mod:`~workers.protocol.sockets`: subprotocol, session heartbeat, close codes, protocol versions
- :mod:`~workers.protocol.stats`: ``Percentiles`` and the one percentile definition
- :mod:`~workers.protocol.reports`: the per-stream stats report
- :mod:`~workers.protocol.limits`: ``TokenBucket`` rate limiting
- :mod:`~workers.protocol.messages`: worker <-> platform control messages and their parsers
"""

from workers.protocol.fields import MAX_ID_LEN, QUAT_NORM_TOLERANCE, ProtocolError
from workers.protocol.frames import (
    FRAME_STAGES,
    STAGES,
    ClientFeedback,
    FrameMeta,
    frame_latency_ms,
    frame_stages,
    parse_client_feedback,
    parse_frame_meta,
)
from workers.protocol.ladder import (
    CODECS,
    DEFAULT_BITRATES,
    RUNG_ORDER,
    RUNGS,
    scaled_bitrate,
    stereo_size,
)
from workers.protocol.limits import TokenBucket
from workers.protocol.messages import (
    FROM_PLATFORM,
    FROM_WORKER,
    MAX_CONTROL_BYTES,
    MAX_REMOTE_POSES,
    ClipChange,
    ErrorMessage,
    Heartbeat,
    QualityHint,
    QualityRequest,
    Register,
    Registered,
    RemotePoses,
    Signal,
    StatsReport,
    StreamStart,
    StreamStop,
    StreamStopped,
    VoiceMute,
    WorkerMessage,
    WorkerPoses,
    encode_message,
    message_to_dict,
    parse_from_platform,
    parse_from_worker,
    parse_worker_message,
)
from workers.protocol.pose import (
    INPUT_EVENTS,
    INPUT_KINDS,
    MAX_EVENT_COUNT,
    MAX_HAND_REACH_M,
    MAX_POSE_BYTES,
    MAX_POSITION_M,
    Pose,
    RigidPose,
    XrInput,
    compose,
    parse_pose,
)
from workers.protocol.reports import (
    CANDIDATE_PAIRS,
    MAX_REJECT_CODES,
    MAX_SUMMARY_BYTES,
    ClientStats,
    ForecastReport,
    PoseCounts,
    StreamReport,
    parse_stream_report,
)
from workers.protocol.sockets import (
    BEARER_PREFIX,
    CLOSE_CODES,
    CLOSE_DECLARED_DEAD,
    CLOSE_FORBIDDEN,
    CLOSE_IDLE,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_SESSION_ENDED,
    CLOSE_SUPERSEDED,
    CLOSE_UNAUTHORIZED,
    CLOSE_UNSUPPORTED_VERSION,
    PROTOCOL_VERSION,
    SESSION_HEARTBEAT_S,
    SESSION_IDLE_TIMEOUT_S,
    SUBPROTOCOL,
    SUPPORTED_VERSIONS,
    negotiate_version,
)
from workers.protocol.stats import Percentiles, percentile, percentiles

__all__ = [
    "BEARER_PREFIX",
    "CANDIDATE_PAIRS",
    "CLOSE_CODES",
    "CLOSE_DECLARED_DEAD",
    "CLOSE_FORBIDDEN",
    "CLOSE_IDLE",
    "CLOSE_NOT_FOUND",
    "CLOSE_RATE_LIMITED",
    "CLOSE_SESSION_ENDED",
    "CLOSE_SUPERSEDED",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_UNSUPPORTED_VERSION",
    "CODECS",
    "DEFAULT_BITRATES",
    "FRAME_STAGES",
    "FROM_PLATFORM",
    "FROM_WORKER",
    "INPUT_EVENTS",
    "INPUT_KINDS",
    "MAX_CONTROL_BYTES",
    "MAX_EVENT_COUNT",
    "MAX_HAND_REACH_M",
    "MAX_ID_LEN",
    "MAX_POSE_BYTES",
    "MAX_POSITION_M",
    "MAX_REJECT_CODES",
    "MAX_REMOTE_POSES",
    "MAX_SUMMARY_BYTES",
    "PROTOCOL_VERSION",
    "QUAT_NORM_TOLERANCE",
    "RUNGS",
    "RUNG_ORDER",
    "SESSION_HEARTBEAT_S",
    "SESSION_IDLE_TIMEOUT_S",
    "STAGES",
    "SUBPROTOCOL",
    "SUPPORTED_VERSIONS",
    "ClientFeedback",
    "ClientStats",
    "ClipChange",
    "ErrorMessage",
    "ForecastReport",
    "FrameMeta",
    "Heartbeat",
    "Percentiles",
    "Pose",
    "PoseCounts",
    "ProtocolError",
    "QualityHint",
    "QualityRequest",
    "Register",
    "Registered",
    "RemotePoses",
    "RigidPose",
    "Signal",
    "StatsReport",
    "StreamReport",
    "StreamStart",
    "StreamStop",
    "StreamStopped",
    "TokenBucket",
    "VoiceMute",
    "WorkerMessage",
    "WorkerPoses",
    "XrInput",
    "compose",
    "encode_message",
    "frame_latency_ms",
    "frame_stages",
    "message_to_dict",
    "negotiate_version",
    "parse_client_feedback",
    "parse_frame_meta",
    "parse_from_platform",
    "parse_from_worker",
    "parse_pose",
    "parse_stream_report",
    "parse_worker_message",
    "percentile",
    "percentiles",
    "scaled_bitrate",
    "stereo_size",
]
