"""The configuration of one stream: what the platform's ``stream_start`` asked for, and the
worker's own limits and switches (tests and benchmarks pass small sizes here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.protocol import RUNGS, StreamStart
from workers.streaming.voice import VOICE_SLOTS


@dataclass(slots=True)
class StreamConfig:
    stream_id: str
    session_id: str = ""
    participant_id: str = ""
    quality: str = "1080p"
    target_fps: float = 90.0
    max_quality: str | None = None
    pinned_quality: str | None = None
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    ice_transport_policy: str = "all"  # "relay": TURN relay candidates only
    stats_interval_s: float = 1.0
    pose_rate_limit: float = 250.0  # pose messages per second (burst: one second's worth)
    # Client feedback on the `frames` channel (about one a second, plus view switches): messages
    # per second past this are dropped; layout changes (views, display rate) apply at most once
    # per interval, the latest value winning, so a flood cannot reopen the encoder per frame.
    feedback_rate_limit: float = 20.0
    layout_interval_s: float = 0.25
    encoder_threads: int = 0
    max_bitrate: int = 200_000_000
    # Scale the rendered size to hold the frame rate (governor.py); off pins full size.
    render_governor: bool = True
    min_render_scale: float = 0.4
    # Ask the client to show frames as soon as they are decoded (playout.py).
    playout_delay: bool = True
    voice_slots: int = VOICE_SLOTS  # other participants' voices a client hears at once
    # Per-eye size per rung; tests and benchmarks pass small sizes here.
    rung_sizes: Mapping[str, tuple[int, int]] = field(default_factory=lambda: dict(RUNGS))

    @classmethod
    def from_start(cls, message: StreamStart, **overrides: Any) -> StreamConfig:
        return cls(
            stream_id=message.stream_id,
            session_id=message.session_id,
            participant_id=message.participant_id,
            quality=message.quality,
            target_fps=float(message.target_fps),
            max_quality=message.max_quality,
            pinned_quality=message.pinned_quality,
            ice_servers=list(message.ice_servers),
            ice_transport_policy=message.ice_transport_policy,
            **overrides,
        )

    def stereo_size(self, rung: str) -> tuple[int, int]:
        w, h = self.rung_sizes[rung]
        return 2 * w, h
