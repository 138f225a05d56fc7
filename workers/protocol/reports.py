"""The stats report a worker sends about each stream once a second (``StatsReport.stats``),
and its strict validation: every known key is typed and bounded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from workers.protocol.fields import (
    ProtocolError,
    choice,
    integer,
    mapping,
    number,
    optional_number,
    text,
    vector,
)
from workers.protocol.frames import FRAME_STAGES
from workers.protocol.ladder import rung
from workers.protocol.stats import Percentiles

MAX_REJECT_CODES: Final = 32
MAX_SUMMARY_BYTES: Final = 4096
# The selected ICE candidate pair: "relay" (through TURN), "srflx"/"prflx" (through a NAT),
# "host" (direct), "" (not connected yet).
CANDIDATE_PAIRS = ("", "host", "srflx", "prflx", "relay")


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
    (:func:`~workers.protocol.frames.frame_latency_ms`). ``stage_ms`` holds the
    :data:`FRAME_STAGES` of the same frames, so their p50s add up to about the latency's.
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
    # One of CANDIDATE_PAIRS.
    candidate_pair: str = ""

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it (what the platform stores): lists, not tuples."""
        out = asdict(self)
        if self.size is not None:
            out["size"] = list(self.size)
        return out


def _parse_percentiles(value: Any, name: str) -> Percentiles:
    obj = mapping(value, name)
    p = [number(obj.get(q, 0.0), f"{name}.{q}", lo=-1e6, hi=1e6) for q in ("p50", "p95", "p99")]
    return Percentiles(p[0], p[1], p[2])


def _parse_forecast(value: Any) -> ForecastReport:
    obj = mapping(value, "forecast")
    return ForecastReport(
        bandwidth_bps=optional_number(obj, "bandwidth_bps"),
        delay_ms=optional_number(obj, "delay_ms", lo=-1e6, hi=1e6),
        horizon_s=number(obj.get("horizon_s", 0.0), "horizon_s", lo=0.0, hi=600.0),
        confidence=number(obj.get("confidence", 0.0), "confidence", lo=0.0, hi=1.0),
        recommended_rung=rung(obj.get("recommended_rung"), "recommended_rung", optional=True),
        reason=text(obj.get("reason", ""), "reason", max_len=256, allow_empty=True),
        rung=text(obj.get("rung", ""), "rung", max_len=8, allow_empty=True),
        needed_bps=number(obj.get("needed_bps", 0.0), "needed_bps", lo=0.0, hi=1e12),
        delay_slope_ms_per_s=number(
            obj.get("delay_slope_ms_per_s", 0.0), "delay_slope_ms_per_s", lo=-1e6, hi=1e6
        ),
        overuse=obj.get("overuse") is True,
    )


def _summary(value: Any, name: str) -> dict[str, Any]:
    obj = mapping(value or {}, name)
    if len(json.dumps(obj, separators=(",", ":"))) > MAX_SUMMARY_BYTES:
        raise ProtocolError("too_large", f"{name} is over {MAX_SUMMARY_BYTES} bytes")
    return obj


def parse_stream_report(value: Any) -> StreamReport:
    """Validate the ``stats`` body of a stats message (strict: every known key is typed)."""
    obj = mapping(value, "stats")
    stage_ms: dict[str, Percentiles] = {}
    for stage, values in mapping(obj.get("stage_ms") or {}, "stage_ms").items():
        if stage not in FRAME_STAGES:
            raise ProtocolError("bad_value", f"stage_ms keys must be in {FRAME_STAGES}")
        stage_ms[stage] = _parse_percentiles(values, f"stage_ms.{stage}")
    pose = mapping(obj.get("pose") or {}, "pose")
    rejected = mapping(pose.get("rejected") or {}, "pose.rejected")
    if len(rejected) > MAX_REJECT_CODES:
        raise ProtocolError("too_large", "too many pose reject codes")
    client = mapping(obj.get("client") or {}, "client")
    size = obj.get("size")
    return StreamReport(
        t=number(obj.get("t"), "t", lo=0.0, hi=1e15),
        rung=str(rung(obj.get("rung"), "rung", optional=False)),
        fps=number(obj.get("fps", 0.0), "fps", lo=0.0, hi=1e3),
        target_fps=number(obj.get("target_fps", 0.0), "target_fps", lo=0.0, hi=1e3),
        frames_sent=integer(obj.get("frames_sent", 0), "frames_sent"),
        frames_dropped=integer(obj.get("frames_dropped", 0), "frames_dropped"),
        bitrate_bps=int(number(obj.get("bitrate_bps", 0), "bitrate_bps", lo=0.0, hi=1e12)),
        target_bitrate_bps=int(
            number(obj.get("target_bitrate_bps", 0), "target_bitrate_bps", lo=0.0, hi=1e12)
        ),
        remb_bps=None
        if obj.get("remb_bps") is None
        else int(number(obj["remb_bps"], "remb_bps", lo=0.0, hi=1e12)),
        loss=optional_number(obj, "loss", hi=1.0),
        rtt_ms=optional_number(obj, "rtt_ms", hi=1e6),
        jitter_ms=optional_number(obj, "jitter_ms", hi=1e6),
        size=None
        if size is None
        else (
            int(vector(size, "size", 2, bound=1e5)[0]),
            int(vector(size, "size", 2, bound=1e5)[1]),
        ),
        render_scale=number(obj.get("render_scale", 1.0), "render_scale", lo=0.05, hi=1.0),
        render_scale_changes=integer(obj.get("render_scale_changes", 0), "render_scale_changes"),
        paced_fps=number(obj.get("paced_fps", 0.0), "paced_fps", lo=0.0, hi=1e3),
        encoder=text(obj.get("encoder", ""), "encoder", max_len=32, allow_empty=True),
        encoder_reason=text(
            obj.get("encoder_reason", ""), "encoder_reason", max_len=256, allow_empty=True
        ),
        keyframes=integer(obj.get("keyframes", 0), "keyframes"),
        stage_ms=stage_ms,
        latency_ms=None
        if obj.get("latency_ms") is None
        else _parse_percentiles(obj["latency_ms"], "latency_ms"),
        pose=PoseCounts(
            received=integer(pose.get("received", 0), "pose.received"),
            accepted=integer(pose.get("accepted", 0), "pose.accepted"),
            rejected={
                text(k, "pose.rejected key", max_len=32): integer(v, f"pose.rejected.{k}")
                for k, v in rejected.items()
            },
        ),
        client=ClientStats(
            decode_ms=optional_number(client, "decode_ms", hi=1e5),
            display_ms=optional_number(client, "display_ms", hi=1e5),
            frames_dropped=None
            if client.get("frames_dropped") is None
            else integer(client["frames_dropped"], "client.frames_dropped"),
        ),
        forecast=None if obj.get("forecast") is None else _parse_forecast(obj["forecast"]),
        xr=_summary(obj.get("xr"), "xr"),
        voice=_summary(obj.get("voice"), "voice"),
        candidate_pair=choice(obj.get("candidate_pair", ""), "candidate_pair", CANDIDATE_PAIRS),
    )
