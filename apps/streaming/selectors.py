"""Reads of the streaming control plane. Querysets are restricted to what the caller may see,
so someone else's stream is a 404, not a 403."""

import uuid
from typing import Any

from django.db.models import QuerySet

from apps.accounts.permissions import caller_has_perm
from apps.core.errors import NotFound
from apps.streaming.models import Stream, StreamingWorker, StreamStats

HISTORY_POINTS = 60


def streams_visible(*, user: Any, identity: Any) -> QuerySet[Stream]:
    qs = Stream.objects.select_related("worker", "session")
    if caller_has_perm(user, identity, "streaming.view_any_stream"):
        return qs
    return qs.filter(user=user)


def stream_get_for_user(*, user: Any, identity: Any, stream_id: Any) -> Stream:
    try:
        sid = uuid.UUID(str(stream_id))
    except ValueError as exc:
        raise NotFound("No such stream.", code="stream_not_found") from exc
    stream = streams_visible(user=user, identity=identity).filter(pk=sid).first()
    if stream is None:
        raise NotFound("No such stream.", code="stream_not_found")
    return stream


def streams_of_session(*, user: Any, identity: Any, session_id: Any) -> list[Stream]:
    try:
        sid = uuid.UUID(str(session_id))
    except ValueError as exc:
        raise NotFound("No such session.", code="session_not_found") from exc
    streams = list(
        streams_visible(user=user, identity=identity)
        .filter(session_id=sid)
        .order_by("-created_at")[:100]
    )
    if not streams:
        raise NotFound("No streams in this session.", code="stream_not_found")
    return streams


def workers_all() -> QuerySet[StreamingWorker]:
    return StreamingWorker.objects.all()


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stream_metrics(stream: Stream) -> dict[str, Any]:
    """Performance of one stream from the worker's latest stats report and a short history."""
    s: dict[str, Any] = stream.last_stats or {}
    history = list(
        StreamStats.objects.filter(stream=stream)
        .order_by("-id")
        .values_list("report", flat=True)[:HISTORY_POINTS]
    )
    history.reverse()
    return {
        "stream_id": str(stream.id),
        "session_id": str(stream.session_id),
        "status": stream.status,
        "worker": stream.worker.name if stream.worker else None,
        "fps": _num(s.get("fps")),
        "target_fps": _num(s.get("target_fps")),
        # Worker side: pose received -> frame handed to the network (p50/p95/p99, ms).
        "latency_ms": s.get("latency_ms"),
        "stage_ms": s.get("stage_ms", {}),
        "bitrate_bps": _num(s.get("bitrate_bps")),
        "target_bitrate_bps": _num(s.get("target_bitrate_bps")),
        "loss": _num(s.get("loss")),
        "rtt_ms": _num(s.get("rtt_ms")),
        "jitter_ms": _num(s.get("jitter_ms")),
        "rung": stream.quality_rung or s.get("rung"),
        "encoder": stream.encoder or s.get("encoder"),
        "frames_sent": s.get("frames_sent"),
        "frames_dropped": s.get("frames_dropped"),
        "client": s.get("client"),
        "reported_at_ms": s.get("t"),
        "summary": stream.stats_summary,
        "history": [
            {
                "t": h.get("t"),
                "fps": h.get("fps"),
                "bitrate_bps": h.get("bitrate_bps"),
                "rung": h.get("rung"),
                "rtt_ms": h.get("rtt_ms"),
                "loss": h.get("loss"),
            }
            for h in history
            if isinstance(h, dict)
        ],
    }


def streams_for_session(*, session: Any) -> list[dict[str, Any]]:
    """Active streams of a session, for ``hermes:session_established`` (sessions app hook)."""
    return [
        {
            "stream_id": str(s.id),
            "participant_id": s.participant_id,
            "status": s.status,
            "quality": s.quality_rung,
            "encoder": s.encoder,
        }
        for s in Stream.objects.filter(session=session, status__in=Stream.ACTIVE)
    ]
