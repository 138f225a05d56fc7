"""Writes of monitoring: capacity samples, QoS history retention, stream forecasts + actions."""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.core.events import group_send_after_commit
from apps.monitoring import metrics, selectors
from apps.monitoring.forecast import StreamForecast
from apps.monitoring.models import CapacitySample, StreamStatsMinute
from apps.sessions.extensions import member_group

logger = logging.getLogger(__name__)

PREDICTION_EVENT = "delphi:oracle_prediction"


# ------------------------------------------------------------------ capacity


def capacity_sample_take(*, now: datetime | None = None) -> CapacitySample:
    state = selectors.platform_state(with_forecast=False)
    workers = state["workers"]
    return CapacitySample.objects.create(
        sampled_at=now or timezone.now(),
        streams=sum(state["streams_by_rung_encoder"].values()),
        sessions=state["sessions_active"],
        participants=state["participants_active"],
        workers_online=sum(1 for w in workers if w["status"] == "online"),
        worker_capacity=sum(w["capacity"] for w in workers),
    )


def capacity_samples_prune(*, now: datetime | None = None) -> int:
    days = int(selectors.setting("MONITORING_CAPACITY_RETENTION_DAYS", 35))
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = CapacitySample.objects.filter(sampled_at__lt=cutoff).delete()
    return deleted


# ------------------------------------------------------------------ QoS history retention


@dataclass(frozen=True)
class CompactResult:
    raw_deleted: int
    minutes_written: int
    minutes_deleted: int


def _minute_row(
    stream_id: uuid.UUID, session_id: Any, minute: datetime, reports: list[dict[str, Any]]
) -> StreamStatsMinute:
    def values(key: str) -> list[float]:
        return [
            float(r[key])
            for r in reports
            if isinstance(r.get(key), int | float) and not isinstance(r.get(key), bool)
        ]

    def mean(xs: list[float]) -> float | None:
        return sum(xs) / len(xs) if xs else None

    fps = values("fps")
    latencies = [x for x in map(metrics.report_latency_ms, reports) if x is not None]
    rungs = Counter(str(r.get("rung") or "") for r in reports)
    return StreamStatsMinute(
        stream_id=stream_id,
        session_id=session_id,
        minute=minute,
        samples=len(reports),
        rung=rungs.most_common(1)[0][0][:8] if rungs else "",
        fps_mean=mean(fps),
        fps_min=min(fps) if fps else None,
        bitrate_mean_bps=mean(values("bitrate_bps")),
        loss_mean=mean(values("loss")),
        rtt_mean_ms=mean(values("rtt_ms")),
        latency_p50_ms=selectors._percentile(latencies, 0.5),
        latency_p99_ms=selectors._percentile(latencies, 0.99),
    )


def qos_history_compact(*, now: datetime | None = None, batch: int = 20_000) -> CompactResult:
    """Downsample per-second ``streaming.StreamStats`` rows older than
    ``MONITORING_QOS_RAW_SECONDS`` (default 3600) into per-minute ``StreamStatsMinute`` rows,
    delete those raw rows, and delete minute rows older than ``MONITORING_QOS_RETENTION_DAYS``
    (default 30). Idempotent: a minute seen again (late rows) is merged by recomputing it
    from the rows at hand and keeping the one with more samples."""
    now = now or timezone.now()
    raw_cutoff = now - timedelta(seconds=int(selectors.setting("MONITORING_QOS_RAW_SECONDS", 3600)))
    # Only whole minutes: a minute straddling the cutoff waits for the next run.
    raw_cutoff = raw_cutoff.replace(second=0, microsecond=0)
    keep_days = int(selectors.setting("MONITORING_QOS_RETENTION_DAYS", 30))
    written = raw_deleted = 0
    stats = selectors._model("streaming", "StreamStats")
    if stats is not None:
        with transaction.atomic():
            rows = list(
                stats.objects.filter(created_at__lt=raw_cutoff)
                .order_by("id")
                .values_list("id", "stream_id", "stream__session_id", "created_at", "report")[
                    :batch
                ]
            )
            groups: dict[tuple[Any, Any, datetime], list[dict[str, Any]]] = defaultdict(list)
            for _, stream_id, session_id, created_at, report in rows:
                minute = created_at.replace(second=0, microsecond=0)
                groups[(stream_id, session_id, minute)].append(
                    report if isinstance(report, dict) else {}
                )
            for (stream_id, session_id, minute), reports in groups.items():
                row = _minute_row(stream_id, session_id, minute, reports)
                existing = StreamStatsMinute.objects.filter(
                    stream_id=stream_id, minute=minute
                ).first()
                if existing is not None and existing.samples >= row.samples:
                    continue
                if existing is not None:
                    row.pk = existing.pk
                row.save()
                written += 1
            raw_deleted, _ = stats.objects.filter(id__in=[r[0] for r in rows]).delete()
    minutes_deleted, _ = StreamStatsMinute.objects.filter(
        minute__lt=now - timedelta(days=keep_days)
    ).delete()
    return CompactResult(raw_deleted, written, minutes_deleted)


# ------------------------------------------------------------------ stream forecasts


@dataclass(frozen=True)
class OracleDecision:
    """What ``stream_forecast_and_act`` concluded. ``step_down_to`` is the rung the worker
    should cap the stream at for ``hold_s`` seconds (None: do nothing)."""

    stream_id: str
    forecast: StreamForecast
    action: str  # "none" | "step_down" | "pinned" | "cooldown" | "low_confidence"
    step_down_to: str | None = None
    hold_s: float = 0.0
    notified: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream_id": self.stream_id,
            "forecast": self.forecast.as_dict(),
            "action": self.action,
            "step_down_to": self.step_down_to,
            "hold_s": self.hold_s,
        }


def stream_forecast_and_act(stream_id: Any) -> OracleDecision:
    """Forecast a stream from its recent stats reports; when the current rung will not hold,
    tell its viewer (``delphi:oracle_prediction`` to their member group, after commit) and
    return a step-down decision for the worker. Call after each stats report is stored.

    Acting is rate-limited per stream (``MONITORING_ORACLE_COOLDOWN_S``, default 5 s) so one
    slow decline does not become a message every second, and needs a minimum confidence
    (``MONITORING_ORACLE_MIN_CONFIDENCE``, default 0.4)."""
    stream_model = selectors._model("streaming", "Stream")
    fc = selectors.stream_forecast(stream_id)
    sid = str(stream_id)
    if stream_model is None or fc.recommended_rung is None:
        return OracleDecision(sid, fc, "none")
    stream = stream_model.objects.filter(pk=stream_id).first()
    if stream is None:
        return OracleDecision(sid, fc, "none")
    if fc.confidence < float(selectors.setting("MONITORING_ORACLE_MIN_CONFIDENCE", 0.4)):
        return OracleDecision(sid, fc, "low_confidence")
    cooldown = float(selectors.setting("MONITORING_ORACLE_COOLDOWN_S", 5.0))
    # cache.add is atomic: only the first caller inside the cooldown acts.
    if not cache.add(f"delphi:oracle:{sid}", 1, timeout=max(int(cooldown), 1)):
        return OracleDecision(sid, fc, "cooldown")
    hold_s = float(selectors.setting("MONITORING_ORACLE_HOLD_S", 10.0))
    if stream.pinned_quality:
        action, target = "pinned", None  # the user's pin wins; still warn them
    else:
        action, target = "step_down", fc.recommended_rung
    metrics.oracle_predictions.labels(action=action).inc()
    data = {
        "stream_id": sid,
        "forecast": fc.as_dict(),
        "action": action,
        "quality": target,
        "hold_s": hold_s if target else 0.0,
    }
    group_send_after_commit(
        member_group(stream.session_id, stream.user_id),
        {"type": "client.event", "event": PREDICTION_EVENT, "data": data},
    )
    logger.info("oracle: stream %s %s (%s)", sid, action, fc.reason)
    return OracleDecision(sid, fc, action, target, hold_s if target else 0.0, True)
