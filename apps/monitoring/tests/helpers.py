"""Helpers of the monitoring tests: a metric sample, a worker's stats report, and the rows
the ``platform`` fixture makes (conftest.py holds the fixture)."""

import time
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY

from workers.protocol import StreamReport, parse_stream_report


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    """Current value of one sample in this process's default registry (0 when absent)."""
    value = REGISTRY.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


@dataclass
class Platform:
    sessions: list[Any] = field(default_factory=list)
    participants: list[Any] = field(default_factory=list)
    workers: list[Any] = field(default_factory=list)
    streams: list[Any] = field(default_factory=list)


def report(stream: Any, **fields: Any) -> dict[str, Any]:
    """A stats report as a worker sends it (``StreamReport`` of workers/protocol/reports.py)."""
    base = {
        "t": time.time() * 1000.0,
        "fps": 88.0,
        "target_fps": 90,
        "bitrate_bps": 24_000_000,
        "remb_bps": 60_000_000,
        "loss": 0.0,
        "rtt_ms": 30.0,
        "rung": "1080p",
        "encoder": "libx264",
        "stage_ms": {"render": {"p50": 4.0}, "encode": {"p50": 6.0}},
        "latency_ms": {"p50": 21.5, "p95": 30.0, "p99": 41.0},
        "client": {"decode_ms": 3.0, "display_ms": 11.0},
    }
    return base | fields


def typed(stream: Any, **fields: Any) -> StreamReport:
    return parse_stream_report(report(stream, **fields))
