"""Reads for metrics, forecasts, the overview API and the dashboard.

Monitoring owns only its capacity samples. Sessions and streams are read through the selectors
of the apps that own them (``apps.sessions.selectors``, ``apps.streaming.selectors``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.monitoring import capacity_model
from apps.monitoring.capacity_forecast import CapacityForecast, capacity_forecast
from apps.monitoring.models import CapacitySample
from apps.sessions import selectors as sessions
from apps.streaming import selectors as streaming
from workers.protocol import percentile


def workers_list() -> list[dict[str, Any]]:
    return streaming.workers_live()


def platform_state(*, with_forecast: bool = True) -> dict[str, Any]:
    """What the /metrics state collector exports, from the database now."""
    n_sessions, participants = sessions.sessions_active_counts()
    state: dict[str, Any] = {
        "sessions_active": n_sessions,
        "participants_active": participants,
        "streams_by_rung_encoder": streaming.streams_active_by_rung_encoder(),
        "streams_by_candidate_pair": streaming.streams_active_by_candidate_pair(),
        "workers_by_state": streaming.workers_by_state(),
        "workers": workers_list(),
    }
    if with_forecast:
        state["capacity_forecast"] = capacity_forecast_now().as_dict()
        streams = sum(state["streams_by_rung_encoder"].values())
        state["web_pods_desired"] = capacity_model.web_pods_desired(
            users=participants, streams=streams
        )
    return state


def streams_active_count() -> int:
    return streaming.streams_active_count()


# ------------------------------------------------------------------ capacity


def capacity_history(*, now: datetime | None = None, days: int = 14) -> list[float]:
    """Concurrent streams per bucket (``MONITORING_CAPACITY_BUCKET_S``, default 300), oldest
    first, the last bucket being now's. Empty buckets carry the previous value forward (a
    missed beat is not a drop to zero)."""
    bucket_s = int(settings.MONITORING_CAPACITY_BUCKET_S)
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


def capacity_forecast_now(*, now: datetime | None = None) -> CapacityForecast:
    """The capacity forecast; cached for ``MONITORING_CAPACITY_CACHE_S`` (default 60) because
    every scrape of every web process asks and the fit over two weeks takes tens of ms."""
    ttl = int(settings.MONITORING_CAPACITY_CACHE_S)
    if now is not None or ttl <= 0:
        return _capacity_forecast(now)
    cached = cache.get("delphi:capacity_forecast")
    if isinstance(cached, dict):
        return CapacityForecast(**cached)
    result = _capacity_forecast(None)
    cache.set("delphi:capacity_forecast", dataclasses.asdict(result), ttl)
    return result


def _capacity_forecast(now: datetime | None) -> CapacityForecast:
    history = capacity_history(now=now)
    if not history:
        history = [float(streams_active_count())]
    return capacity_forecast(
        history,
        bucket_s=int(settings.MONITORING_CAPACITY_BUCKET_S),
        season=int(settings.MONITORING_CAPACITY_SEASON_BUCKETS),
        streams_per_worker=int(settings.MONITORING_STREAMS_PER_WORKER),
        headroom=float(settings.MONITORING_CAPACITY_HEADROOM),
        min_workers=int(settings.MONITORING_MIN_WORKERS),
    )


# ------------------------------------------------------------------ streams


def live_streams(*, session_id: Any = None) -> list[dict[str, Any]]:
    return streaming.streams_live(session_id=session_id)


def live_sessions() -> list[dict[str, Any]]:
    per_session = streaming.streams_active_by_session()
    return [{**s, "streams": per_session.get(s["id"], 0)} for s in sessions.sessions_live()]


# ------------------------------------------------------------------ overview


def overview(*, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """The platform now, and latency/fps/load over ``window`` (raw reports plus the per-minute
    history for the part of the window older than the raw retention)."""
    now = now or timezone.now()
    since = now - window
    state = platform_state(with_forecast=False)
    latencies, fps = streaming.stats_window(since=since, until=now)
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
            "latency_ms": {"p50": percentile(latencies, 0.5), "p99": percentile(latencies, 0.99)},
            "fps": {"p50": percentile(fps, 0.5), "p1": percentile(fps, 0.01)},
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
            "latency_p50_ms": percentile(latencies, 0.5),
            "latency_p99_ms": percentile(latencies, 0.99),
            "fps_mean": sum(fps) / len(fps) if fps else None,
            "bitrate_bps": sum(bitrates),
            # How many streams go through the TURN relay (the others connect directly).
            "relayed": sum(1 for s in streams if s.get("candidate_pair") == "relay"),
        },
        "sessions": live_sessions(),
        "workers": state["workers"],
        "streams": streams,
    }
