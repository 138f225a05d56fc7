"""Reads of the streaming control plane. Querysets are restricted to what the caller may see,
so someone else's stream is a 404, not a 403."""

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet

from apps.accounts.permissions import caller_has_perm
from apps.core.errors import NotFound
from apps.sessions.models import Participant
from apps.streaming.models import Stream, StreamingWorker, StreamStats, StreamStatsMinute

logger = logging.getLogger(__name__)

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


def report_latency_ms(report: Mapping[str, Any]) -> float | None:
    """THE latency of a stream in a stored report: the worker's measured pose received ->
    frame sent, p50 over the report's frames (``StreamReport.latency_ms``). The API, the
    metrics and the dashboard all show this figure; None when no frame had a client pose."""
    latency = report.get("latency_ms")
    return _num(latency.get("p50")) if isinstance(latency, Mapping) else None


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
        # The rate the worker paces at (at most the client's display rate) and the governor's
        # render scale: below 1 the picture is rendered and sent smaller to hold the rate.
        "paced_fps": _num(s.get("paced_fps")),
        "render_scale": _num(s.get("render_scale", 1.0)),
        # The stream's one latency: pose received -> frame handed to the network, measured
        # by the worker per frame (p50/p95/p99, ms); report_latency_ms is its p50.
        "latency_ms": s.get("latency_ms"),
        "stage_ms": s.get("stage_ms", {}),
        "bitrate_bps": _num(s.get("bitrate_bps")),
        "target_bitrate_bps": _num(s.get("target_bitrate_bps")),
        "loss": _num(s.get("loss")),
        "rtt_ms": _num(s.get("rtt_ms")),
        "jitter_ms": _num(s.get("jitter_ms")),
        "rung": stream.quality_rung or s.get("rung"),
        "encoder": stream.encoder or s.get("encoder"),
        "candidate_pair": str(s.get("candidate_pair") or ""),
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
                "latency_ms": report_latency_ms(h),
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


# ---------------------------------------------------------------- for monitoring
# Monitoring reads streaming's tables only through these.


def streams_active() -> QuerySet[Stream]:
    return Stream.objects.filter(status__in=Stream.ACTIVE)


def streams_active_count() -> int:
    return streams_active().count()


def streams_active_by_rung_encoder() -> dict[tuple[str, str], int]:
    rows = streams_active().values("quality_rung", "encoder").annotate(n=Count("pk"))
    return {(r["quality_rung"], r["encoder"]): r["n"] for r in rows}


def streams_active_by_candidate_pair() -> dict[str, int]:
    """Active streams by the ICE candidate pair type of their latest report ("relay": the
    media crosses the TURN server; "" before the first report after ICE connected)."""
    rows = streams_active().values_list("last_stats__candidate_pair").annotate(n=Count("pk"))
    return {str(pair or ""): n for pair, n in rows}


def streams_active_by_session() -> dict[str, int]:
    rows = streams_active().values("session_id").annotate(n=Count("pk"))
    return {str(r["session_id"]): r["n"] for r in rows}


def workers_by_state() -> dict[str, int]:
    return {
        r["status"]: r["n"]
        for r in StreamingWorker.objects.values("status").annotate(n=Count("pk"))
    }


def workers_live() -> list[dict[str, Any]]:
    """Online and draining workers with their capacity, load and active streams."""
    live = (StreamingWorker.Status.ONLINE, StreamingWorker.Status.DRAINING)
    rows = StreamingWorker.objects.filter(status__in=live).annotate(
        active=Count("streams", filter=Q(streams__status__in=Stream.ACTIVE))
    )
    return [
        {
            "id": str(w.pk),
            "name": w.name,
            "status": w.status,
            "capacity": w.max_streams,
            "load": float(w.load),
            "streams": w.active,
            "last_heartbeat": w.last_heartbeat.isoformat() if w.last_heartbeat else None,
        }
        for w in rows.order_by("name")
    ]


def streams_live(*, session_id: Any = None, limit: int = 500) -> list[dict[str, Any]]:
    """Active streams with their latest report's figures (for the operator dashboard)."""
    streams = streams_active()
    if session_id is not None:
        streams = streams.filter(session_id=session_id)
    out = []
    for s in streams.select_related("worker").order_by("created_at")[:limit]:
        last = s.last_stats or {}
        out.append(
            {
                "id": str(s.pk),
                "session_id": str(s.session_id),
                "user_id": s.user_id,
                "status": s.status,
                "worker": s.worker.name if s.worker else None,
                "rung": s.quality_rung or last.get("rung") or "",
                "encoder": s.encoder,
                "fps": _num(last.get("fps")),
                "bitrate_bps": _num(last.get("bitrate_bps")),
                "loss": _num(last.get("loss")),
                "rtt_ms": _num(last.get("rtt_ms")),
                "latency_ms": report_latency_ms(last),
                # host / srflx / prflx / relay ("" before ICE selected a pair)
                "candidate_pair": str(last.get("candidate_pair") or ""),
                "forecast": last.get("forecast"),
            }
        )
    return out


def stream_reports_recent(*, stream_id: Any, limit: int = 30) -> list[dict[str, Any]]:
    """The newest ``limit`` stats reports of a stream, oldest first."""
    reports = list(
        StreamStats.objects.filter(stream_id=stream_id)
        .order_by("-id")
        .values_list("report", flat=True)[:limit]
    )
    return [r for r in reversed(reports) if isinstance(r, dict)]


def stats_window(
    *, since: datetime, until: datetime, limit: int = 50_000
) -> tuple[list[float], list[float]]:
    """(latencies, fps) of every stream over [since, until]: one value per second from the
    recent reports, and each folded minute's p50/mean weighted by its samples."""
    latencies: list[float] = []
    fps: list[float] = []
    reports = StreamStats.objects.filter(created_at__gte=since, created_at__lte=until)
    for report in reports.values_list("report", flat=True)[:limit]:
        if not isinstance(report, dict):
            continue
        latency = report_latency_ms(report)
        if latency is not None:
            latencies.append(latency)
        value = _num(report.get("fps"))
        if value is not None:
            fps.append(value)
    minutes = StreamStatsMinute.objects.filter(minute__gte=since, minute__lte=until)
    for m in minutes.values("fps_mean", "latency_p50_ms", "samples")[: limit // 60]:
        weight = min(int(m["samples"] or 1), 60)
        if m["fps_mean"] is not None:
            fps.extend([m["fps_mean"]] * weight)
        if m["latency_p50_ms"] is not None:
            latencies.extend([m["latency_p50_ms"]] * weight)
    return latencies, fps


def worker_streams_active(*, worker_id: uuid.UUID) -> list[tuple[str, str, str]]:
    """(stream id, session id, participant id) of the streams placed on a worker."""
    rows = streams_active().filter(worker_id=worker_id)
    return [
        (str(s), str(session), str(participant))
        for s, session, participant in rows.values_list("id", "session_id", "participant_id")
    ]


# ---------------------------------------------------------------- for the services and stats
# Lookups of the stream a worker's or a client's message names, and the placement queue.


def stream_get_for_worker(
    *, worker_id: uuid.UUID, stream_id: str, lock: bool = False
) -> Stream | None:
    """The active stream ``stream_id`` if ``worker_id`` runs it; None otherwise (logged: a
    worker that names a stream it does not run is out of date or misbehaving). ``lock`` takes
    the stream's row lock for the caller's transaction."""
    try:
        sid = uuid.UUID(stream_id)
    except ValueError:
        sid = None
    qs = Stream.objects.select_related("worker")
    if lock:
        qs = qs.select_for_update(of=("self",))
    stream = (
        qs.filter(pk=sid, worker_id=worker_id, status__in=Stream.ACTIVE).first() if sid else None
    )
    if stream is None:
        logger.warning(
            "worker %s sent a message for stream %.64s it does not run", worker_id, stream_id
        )
    return stream


def stream_get_for_client(*, user_id: int, session_id: uuid.UUID, stream_id: Any) -> Stream:
    """The caller's own active, placed stream in a session; NotFound for any other."""
    try:
        sid = uuid.UUID(str(stream_id))
    except ValueError as exc:
        raise NotFound("No such stream.", code="stream_not_found") from exc
    stream = (
        Stream.objects.select_related("worker")
        .filter(pk=sid, user_id=user_id, session_id=session_id, status__in=Stream.ACTIVE)
        .exclude(worker=None)
        .first()
    )
    if stream is None:
        raise NotFound("No such stream.", code="stream_not_found")
    return stream


def streams_queued() -> QuerySet[Stream]:
    """Streams waiting for a worker with capacity."""
    return Stream.objects.filter(status=Stream.Status.PENDING, worker__isnull=True)


def stream_queue_position(*, stream: Stream) -> int:
    return streams_queued().filter(created_at__lte=stream.created_at).count()


def session_voice_muted(*, session_id: uuid.UUID) -> list[str]:
    """Participants an operator muted in a session (``voice_mute``), for a worker that starts
    streaming it."""
    muted = Participant.objects.filter(session_id=session_id, voice_muted=True)
    return [str(pk) for pk in muted.values_list("pk", flat=True)]
