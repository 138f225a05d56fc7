"""Real rows of the sessions and streaming apps for the monitoring tests."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY


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


def typed(stream: Any, **fields: Any) -> Any:
    from workers.protocol import parse_stream_report

    return parse_stream_report(report(stream, **fields))


@pytest.fixture
def platform(make_user: Callable[..., Any]) -> Platform:
    """Two live sessions (3 current participants, one who left) and an ended one; two
    workers online and one dead; three active streams and a stopped one."""
    from apps.sessions.models import Participant, VRSession
    from apps.streaming.models import Stream, StreamingWorker

    owner, guest, third = make_user("participant"), make_user("participant"), make_user()
    live = VRSession.objects.create(name="live", owner=owner, status="active")
    other = VRSession.objects.create(name="open", owner=guest, status="open")
    ended = VRSession.objects.create(name="old", owner=owner, status="ended")
    p = Platform(sessions=[live, other, ended])
    for session, user, left in [
        (live, owner, None),
        (live, guest, None),
        (live, third, timezone.now()),
        (other, guest, None),
        (ended, owner, None),
    ]:
        p.participants.append(Participant.objects.create(session=session, user=user, left_at=left))
    w1 = StreamingWorker.objects.create(
        name="gpu-a", token_hash="a" * 64, status="online", max_streams=4, load=0.5
    )
    w2 = StreamingWorker.objects.create(
        name="gpu-b", token_hash="b" * 64, status="online", max_streams=8, load=0.1
    )
    StreamingWorker.objects.create(name="gpu-c", token_hash="c" * 64, status="dead")
    p.workers = [w1, w2]
    for participant, worker, rung, status in [
        (p.participants[0], w1, "1080p", "streaming"),
        (p.participants[1], w1, "2K", "streaming"),
        (p.participants[3], w2, "1080p", "starting"),
        (p.participants[0], w2, "720p", "stopped"),
    ]:
        p.streams.append(
            Stream.objects.create(
                participant=participant,
                session=participant.session,
                user=participant.user,
                worker=worker,
                status=status,
                quality_rung=rung,
                encoder="libx264",
            )
        )
    return p
