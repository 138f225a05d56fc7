"""Writes of stream stats: one worker report recorded, and the one retention policy.

Retention (the only code that deletes stats rows):

- every per-second report (``StreamStats``) is kept for the recent window,
  ``MORPHEUS_STATS_RECENT_S`` (default 3600 s);
- seconds older than that are folded, a whole minute at a time, into ``StreamStatsMinute``
  rows, which live as long as the stream, and ``MORPHEUS_STATS_MINUTES_RETENTION_DAYS``
  (default 30) after it ends.

Folding runs for a stream every ``MORPHEUS_STATS_COMPACT_EVERY`` reports while it streams (so a
long stream never holds much more than its window of seconds) and for all streams from the
periodic task (``streaming.stats_compact``), which also catches streams that ended.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.core.events import send_event_on_commit
from apps.core.instruments import oracle_predictions
from apps.sessions.extensions import member_group
from apps.streaming.models import Stream, StreamStats, StreamStatsMinute
from apps.streaming.selectors import report_latency_ms, stream_get_for_worker
from workers.protocol import ForecastReport, StreamReport, percentile

logger = logging.getLogger(__name__)

PREDICTION_EVENT = "delphi:oracle_prediction"


def recent_window() -> timedelta:
    return timedelta(seconds=float(settings.MORPHEUS_STATS_RECENT_S))


# ---------------------------------------------------------------- one report


def _summary(previous: dict[str, Any], report: StreamReport) -> dict[str, Any]:
    reports = int(previous.get("reports", 0)) + 1
    old_rung = previous.get("rung")
    return {
        "reports": reports,
        "frames_sent": report.frames_sent,
        "frames_dropped": report.frames_dropped,
        "max_fps": max(float(previous.get("max_fps", 0.0)), report.fps),
        "mean_fps": (float(previous.get("mean_fps", 0.0)) * (reports - 1) + report.fps) / reports,
        "rung_changes": int(previous.get("rung_changes", 0))
        + int(bool(old_rung) and old_rung != report.rung),
        "rung": report.rung,
    }


@transaction.atomic
def stream_stats_record(
    *, worker_id: uuid.UUID, stream_id: str, report: StreamReport, now: datetime | None = None
) -> bool:
    """Keep one stats report of a stream ``worker_id`` runs (others are dropped, logged).

    Three queries in the common case: lock the stream, update it, insert the report. The
    worker's own forecast (``report.forecast``) is recorded with the report; when it stepped
    the stream down, the viewer is told (``delphi:oracle_prediction``, after commit)."""
    now = now or timezone.now()
    stream = stream_get_for_worker(worker_id=worker_id, stream_id=stream_id, lock=True)
    if stream is None:
        return False
    fields = ["last_stats", "stats_summary", "updated_at"]
    if report.rung != stream.quality_rung:
        if stream.quality_rung:
            _to_owner(
                stream,
                "morpheus:quality_changed",
                {
                    "stream_id": str(stream.id),
                    "quality": report.rung,
                    "previous": stream.quality_rung,
                },
            )
        stream.quality_rung = report.rung
        fields.append("quality_rung")
    if report.encoder and report.encoder != stream.encoder:
        stream.encoder = report.encoder
        fields.append("encoder")
    if stream.status == Stream.Status.STARTING and report.frames_sent > 0:
        stream.status = Stream.Status.STREAMING
        stream.started_at = stream.started_at or now
        fields += ["status", "started_at"]
    stream.stats_summary = _summary(stream.stats_summary or {}, report)
    stream.last_stats = report.to_dict()
    stream.save(update_fields=fields)
    StreamStats.objects.create(stream=stream, report=stream.last_stats, created_at=now)
    if report.forecast is not None and report.forecast.recommended_rung is not None:
        _forecast_notify(stream, report.forecast)
    every = int(settings.MORPHEUS_STATS_COMPACT_EVERY)
    if every > 0 and stream.stats_summary["reports"] % every == 0:
        _compact(now=now, stream_id=stream.id)
    return True


def _to_owner(stream: Stream, event: str, data: dict[str, Any]) -> None:
    send_event_on_commit(
        member_group(stream.session_id, stream.user_id),
        {"type": "client.event", "event": event, "data": data},
    )


def _forecast_notify(stream: Stream, forecast: ForecastReport) -> None:
    """The worker's forecast stepped the stream down ahead of trouble (or would have, but the
    user pinned the rung): tell its viewer, at most once per ``MONITORING_ORACLE_COOLDOWN_S``."""
    cooldown = float(settings.MONITORING_ORACLE_COOLDOWN_S)
    try:
        # cache.add is atomic: one notice per cooldown even with several web processes.
        if not cache.add(f"delphi:oracle:{stream.id}", 1, timeout=max(int(cooldown), 1)):
            return
    except Exception:  # the cache is Redis: an outage costs a notice, not the report
        logger.warning("oracle cooldown unavailable; notice for %s skipped", stream.id)
        return
    action = "pinned" if stream.pinned_quality else "step_down"
    target = None if stream.pinned_quality else forecast.recommended_rung
    hold_s = float(settings.MONITORING_ORACLE_HOLD_S) if target else 0.0
    oracle_predictions.labels(action=action).inc()
    _to_owner(
        stream,
        PREDICTION_EVENT,
        {
            "stream_id": str(stream.id),
            "forecast": _forecast_dict(forecast),
            "action": action,
            "quality": target,
            "hold_s": hold_s,
        },
    )


def _forecast_dict(forecast: ForecastReport) -> dict[str, Any]:
    return {
        "bandwidth_bps": None if forecast.bandwidth_bps is None else int(forecast.bandwidth_bps),
        "delay_ms": None if forecast.delay_ms is None else round(forecast.delay_ms, 1),
        "horizon_s": forecast.horizon_s,
        "confidence": round(forecast.confidence, 3),
        "recommended_rung": forecast.recommended_rung,
        "reason": forecast.reason,
        "rung": forecast.rung,
        "needed_bps": int(forecast.needed_bps),
        "delay_slope_ms_per_s": round(forecast.delay_slope_ms_per_s, 2),
        "overuse": forecast.overuse,
    }


# ---------------------------------------------------------------- retention


@dataclass(frozen=True)
class CompactResult:
    raw_deleted: int
    minutes_written: int
    minutes_deleted: int


def _values(reports: list[dict[str, Any]], key: str) -> list[float]:
    return [
        float(r[key])
        for r in reports
        if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)
    ]


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _minute_row(stream_id: uuid.UUID, minute: datetime, reports: list[dict[str, Any]]) -> Any:
    fps = _values(reports, "fps")
    latencies = [x for x in map(report_latency_ms, reports) if x is not None]
    rungs = Counter(str(r.get("rung") or "") for r in reports)
    return StreamStatsMinute(
        stream_id=stream_id,
        minute=minute,
        samples=len(reports),
        rung=rungs.most_common(1)[0][0][:8] if rungs else "",
        fps_mean=_mean(fps),
        fps_min=min(fps) if fps else None,
        bitrate_mean_bps=_mean(_values(reports, "bitrate_bps")),
        loss_mean=_mean(_values(reports, "loss")),
        rtt_mean_ms=_mean(_values(reports, "rtt_ms")),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p99_ms=percentile(latencies, 0.99),
    )


def _merge(old: StreamStatsMinute, new: StreamStatsMinute) -> StreamStatsMinute:
    """One minute folded in two batches: weight each part by its samples."""
    total = old.samples + new.samples

    def weighted(a: float | None, b: float | None) -> float | None:
        if a is None or b is None:
            return a if b is None else b
        return (a * old.samples + b * new.samples) / total

    old.fps_mean = weighted(old.fps_mean, new.fps_mean)
    old.fps_min = min(x for x in (old.fps_min, new.fps_min, math.inf) if x is not None)
    old.fps_min = None if old.fps_min == math.inf else old.fps_min
    old.bitrate_mean_bps = weighted(old.bitrate_mean_bps, new.bitrate_mean_bps)
    old.loss_mean = weighted(old.loss_mean, new.loss_mean)
    old.rtt_mean_ms = weighted(old.rtt_mean_ms, new.rtt_mean_ms)
    old.latency_p50_ms = weighted(old.latency_p50_ms, new.latency_p50_ms)
    old.latency_p99_ms = max(
        (x for x in (old.latency_p99_ms, new.latency_p99_ms) if x is not None), default=None
    )
    old.rung = old.rung if old.samples >= new.samples else new.rung
    old.samples = total
    return old


def _compact(
    *, now: datetime, stream_id: uuid.UUID | None = None, batch: int = 20_000
) -> tuple[int, int]:
    # Only whole minutes: a minute straddling the cutoff waits for the next run.
    cutoff = (now - recent_window()).replace(second=0, microsecond=0)
    rows = StreamStats.objects.filter(created_at__lt=cutoff)
    if stream_id is not None:
        rows = rows.filter(stream_id=stream_id)
    taken = list(rows.order_by("id").values_list("id", "stream_id", "created_at", "report")[:batch])
    if not taken:
        return 0, 0
    groups: dict[tuple[uuid.UUID, datetime], list[dict[str, Any]]] = defaultdict(list)
    for _, sid, created_at, report in taken:
        minute = created_at.replace(second=0, microsecond=0)
        groups[(sid, minute)].append(report if isinstance(report, dict) else {})
    written = 0
    for (sid, minute), reports in groups.items():
        row = _minute_row(sid, minute, reports)
        existing = StreamStatsMinute.objects.filter(stream_id=sid, minute=minute).first()
        (row if existing is None else _merge(existing, row)).save()
        written += 1
    deleted, _ = StreamStats.objects.filter(id__in=[r[0] for r in taken]).delete()
    return deleted, written


def stream_stats_compact(*, now: datetime | None = None, batch: int = 20_000) -> CompactResult:
    """Apply the retention policy to every stream (the periodic task). Idempotent."""
    now = now or timezone.now()
    raw_deleted = written = 0
    while True:
        with transaction.atomic():
            deleted, minutes = _compact(now=now, batch=batch)
        raw_deleted, written = raw_deleted + deleted, written + minutes
        if deleted < batch:
            break
    days = float(settings.MORPHEUS_STATS_MINUTES_RETENTION_DAYS)
    expired = StreamStatsMinute.objects.filter(
        stream__stopped_at__lt=now - timedelta(days=days)
    ).exclude(stream__status__in=Stream.ACTIVE)
    minutes_deleted, _ = expired.delete()
    return CompactResult(raw_deleted, written, minutes_deleted)
