"""Reads for metrics, forecasts, the overview API and the dashboard.

The sessions (``hermes``) and streaming apps are looked up through the app registry, so this
module works (reporting zeros) while either is absent, and never imports their code.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Model, Q
from django.utils import timezone

from apps.monitoring import forecast
from apps.monitoring.models import CapacitySample, StreamStatsMinute

ENDED_SESSION = "ended"
ACTIVE_STREAM = ("pending", "starting", "streaming")
LIVE_WORKER = ("online", "draining")


def _model(label: str, name: str) -> type[Model] | None:
    try:
        return apps.get_model(label, name)
    except LookupError:
        return None


def setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _sessions_active() -> tuple[int, int]:
    session = _model("hermes", "VRSession")
    participant = _model("hermes", "Participant")
    sessions = session.objects.exclude(status=ENDED_SESSION).count() if session is not None else 0
    participants = (
        participant.objects.filter(left_at__isnull=True)
        .exclude(session__status=ENDED_SESSION)
        .count()
        if participant is not None
        else 0
    )
    return sessions, participants


def _active_streams() -> Any:
    stream = _model("streaming", "Stream")
    return None if stream is None else stream.objects.filter(status__in=ACTIVE_STREAM)


def workers_list() -> list[dict[str, Any]]:
    worker = _model("streaming", "StreamingWorker")
    if worker is None:
        return []
    rows = worker.objects.filter(status__in=LIVE_WORKER).annotate(
        active=Count("streams", filter=Q(streams__status__in=ACTIVE_STREAM))
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


def platform_state(*, with_forecast: bool = True) -> dict[str, Any]:
    """What the /metrics state collector exports, from the database now."""
    sessions, participants = _sessions_active()
    by_rung: Counter[tuple[str, str]] = Counter()
    streams = _active_streams()
    if streams is not None:
        for row in streams.values("quality_rung", "encoder").annotate(n=Count("pk")):
            by_rung[(row["quality_rung"], row["encoder"])] += row["n"]
    workers_by_state: dict[str, int] = {}
    worker = _model("streaming", "StreamingWorker")
    if worker is not None:
        for row in worker.objects.values("status").annotate(n=Count("pk")):
            workers_by_state[row["status"]] = row["n"]
    state: dict[str, Any] = {
        "sessions_active": sessions,
        "participants_active": participants,
        "streams_by_rung_encoder": dict(by_rung),
        "workers_by_state": workers_by_state,
        "workers": workers_list(),
    }
    if with_forecast:
        state["capacity_forecast"] = capacity_forecast_now().as_dict()
    return state


def streams_active_count() -> int:
    streams = _active_streams()
    return 0 if streams is None else streams.count()


# ------------------------------------------------------------------ capacity


def capacity_history(*, now: datetime | None = None, days: int = 14) -> list[float]:
    """Concurrent streams per bucket (``MONITORING_CAPACITY_BUCKET_S``, default 300), oldest
    first, the last bucket being now's. Empty buckets carry the previous value forward (a
    missed beat is not a drop to zero)."""
    bucket_s = int(setting("MONITORING_CAPACITY_BUCKET_S", 300))
    now = now or timezone.now()
    since = now - timedelta(days=days)
    rows = list(
        CapacitySample.objects.filter(sampled_at__gt=since, sampled_at__lte=now)
        .order_by("sampled_at")
        .values_list("sampled_at", "streams")
    )
    if not rows:
        return []
    start = rows[0][0]
    n = int((now - start).total_seconds() // bucket_s) + 1
    buckets: list[float | None] = [None] * n
    for at, streams in rows:
        buckets[min(int((at - start).total_seconds() // bucket_s), n - 1)] = float(streams)
    out: list[float] = []
    last = 0.0
    for value in buckets:
        last = value if value is not None else last
        out.append(last)
    return out


def capacity_forecast_now(*, now: datetime | None = None) -> forecast.CapacityForecast:
    """The capacity forecast; cached for ``MONITORING_CAPACITY_CACHE_S`` (default 60) because
    every scrape of every web process asks and the fit over two weeks takes tens of ms."""
    ttl = int(setting("MONITORING_CAPACITY_CACHE_S", 60))
    if now is not None or ttl <= 0:
        return _capacity_forecast(now)
    cached = cache.get("delphi:capacity_forecast")
    if isinstance(cached, dict):
        return forecast.CapacityForecast(**cached)
    result = _capacity_forecast(None)
    cache.set("delphi:capacity_forecast", dataclasses.asdict(result), ttl)
    return result


def _capacity_forecast(now: datetime | None) -> forecast.CapacityForecast:
    history = capacity_history(now=now)
    if not history:
        history = [float(streams_active_count())]
    return forecast.capacity_forecast(
        history,
        bucket_s=int(setting("MONITORING_CAPACITY_BUCKET_S", 300)),
        season=int(setting("MONITORING_CAPACITY_SEASON_BUCKETS", forecast.DAY_BUCKETS_5MIN)),
        streams_per_worker=int(setting("MONITORING_STREAMS_PER_WORKER", 4)),
        headroom=float(setting("MONITORING_CAPACITY_HEADROOM", 0.2)),
        min_workers=int(setting("MONITORING_MIN_WORKERS", 1)),
    )


# ------------------------------------------------------------------ streams


def stream_reports(stream_id: Any, *, limit: int = 30) -> list[dict[str, Any]]:
    """The newest ``limit`` stats reports of a stream, oldest first."""
    stats = _model("streaming", "StreamStats")
    if stats is None:
        return []
    reports = list(
        stats.objects.filter(stream_id=stream_id)
        .order_by("-id")
        .values_list("report", flat=True)[:limit]
    )
    return [r for r in reversed(reports) if isinstance(r, dict)]


def stream_forecast(stream_id: Any) -> forecast.StreamForecast:
    points = [p for p in map(forecast.point_from_report, stream_reports(stream_id)) if p]
    return forecast.predict_stream(points, forecast_config())


def forecast_config() -> forecast.ForecastConfig:
    return forecast.ForecastConfig(
        horizon_s=float(setting("MONITORING_FORECAST_HORIZON_S", 3.0)),
    )


def live_streams(*, session_id: Any = None) -> list[dict[str, Any]]:
    from apps.monitoring.metrics import report_latency_ms

    streams = _active_streams()
    if streams is None:
        return []
    if session_id is not None:
        streams = streams.filter(session_id=session_id)
    out = []
    for s in streams.select_related("worker").order_by("created_at")[:500]:
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
                "fps": last.get("fps"),
                "bitrate_bps": last.get("bitrate_bps"),
                "loss": last.get("loss"),
                "rtt_ms": last.get("rtt_ms"),
                "latency_ms": report_latency_ms(last),
            }
        )
    return out


def live_sessions() -> list[dict[str, Any]]:
    session = _model("hermes", "VRSession")
    if session is None:
        return []
    rows = (
        session.objects.exclude(status=ENDED_SESSION)
        .annotate(
            live_participants=Count("participants", filter=Q(participants__left_at__isnull=True))
        )
        .order_by("-created_at")[:200]
    )
    streams: Counter[str] = Counter()
    active = _active_streams()
    if active is not None:
        for row in active.values("session_id").annotate(n=Count("pk")):
            streams[str(row["session_id"])] = row["n"]
    return [
        {
            "id": str(s.pk),
            "name": s.name,
            "status": s.status,
            "participants": s.live_participants,
            "streams": streams.get(str(s.pk), 0),
            "created_at": s.created_at.isoformat(),
        }
        for s in rows
    ]


# ------------------------------------------------------------------ overview


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def _window_reports(since: datetime) -> Iterable[dict[str, Any]]:
    stats = _model("streaming", "StreamStats")
    if stats is None:
        return []
    return stats.objects.filter(created_at__gte=since).values_list("report", flat=True)[:50_000]


def overview(*, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """The platform now, and latency/fps/load over ``window`` (raw reports plus the per-minute
    history for the part of the window older than the raw retention)."""
    from apps.monitoring.metrics import report_latency_ms

    now = now or timezone.now()
    since = now - window
    state = platform_state(with_forecast=False)
    latencies: list[float] = []
    fps: list[float] = []
    for report in _window_reports(since):
        if not isinstance(report, dict):
            continue
        latency = report_latency_ms(report)
        if latency is not None:
            latencies.append(latency)
        if isinstance(report.get("fps"), int | float):
            fps.append(float(report["fps"]))
    minutes = StreamStatsMinute.objects.filter(minute__gte=since, minute__lte=now)
    for m in minutes.values("fps_mean", "latency_p50_ms", "samples")[:20_000]:
        # Weight each minute by its samples, approximately: its mean/median stands for them.
        weight = min(int(m["samples"] or 1), 60)
        if m["fps_mean"] is not None:
            fps.extend([m["fps_mean"]] * weight)
        if m["latency_p50_ms"] is not None:
            latencies.extend([m["latency_p50_ms"]] * weight)
    samples = CapacitySample.objects.filter(sampled_at__gte=since, sampled_at__lte=now)
    stream_counts = list(samples.values_list("streams", flat=True))
    by_rung: Counter[str] = Counter()
    for (rung, _), n in state["streams_by_rung_encoder"].items():
        by_rung[rung or "unknown"] += n
    workers = state["workers"]
    return {
        "at": now.isoformat(),
        "window_s": int(window.total_seconds()),
        "now": {
            "sessions": state["sessions_active"],
            "participants": state["participants_active"],
            "streams": sum(by_rung.values()),
            "streams_by_rung": dict(by_rung),
            "workers": {
                "by_state": state["workers_by_state"],
                "capacity": sum(w["capacity"] for w in workers),
                "streams": sum(w["streams"] for w in workers),
            },
        },
        "window": {
            "latency_ms": {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99)},
            "fps": {"p50": _percentile(fps, 0.5), "p1": _percentile(fps, 0.01)},
            "reports": len(fps),
            "streams_max": max(stream_counts) if stream_counts else None,
            "streams_mean": (sum(stream_counts) / len(stream_counts)) if stream_counts else None,
        },
    }


def dashboard_snapshot() -> dict[str, Any]:
    """One push of the operator dashboard: live sessions, workers, streams and totals."""
    state = platform_state(with_forecast=False)
    streams = live_streams()
    latencies = [s["latency_ms"] for s in streams if isinstance(s["latency_ms"], int | float)]
    fps = [float(s["fps"]) for s in streams if isinstance(s["fps"], int | float)]
    bitrates = [
        float(s["bitrate_bps"]) for s in streams if isinstance(s["bitrate_bps"], int | float)
    ]
    return {
        "at": timezone.now().isoformat(),
        "totals": {
            "sessions": state["sessions_active"],
            "participants": state["participants_active"],
            "streams": len(streams),
            "latency_p50_ms": _percentile(latencies, 0.5),
            "latency_p99_ms": _percentile(latencies, 0.99),
            "fps_mean": sum(fps) / len(fps) if fps else None,
            "bitrate_bps": sum(bitrates),
        },
        "sessions": live_sessions(),
        "workers": state["workers"],
        "streams": streams,
    }
