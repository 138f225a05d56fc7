"""The platform's event metrics (``vrplatform_*``): the Prometheus instruments every layer
increments where the thing happens (an HTTP request, a WebSocket message, a stream stats report,
a Celery task, an after-commit event that failed).

They live in core, the bottom layer, so that core, accounts, scenes, sessions and streaming can
count without importing monitoring, which reads all of them (its collector,
``apps/monitoring/collector.py``, renders these together with the state it reads at scrape
time). "Instruments" in OpenTelemetry's sense: the write side of metrics, nothing that reads.

They live in prometheus_client's default registry, which is multi-process safe when
``PROMETHEUS_MULTIPROC_DIR`` is set *before* this module is imported (values go to mmap files
there; ``apps.monitoring.collector.registry_for_scrape`` merges them). This module imports no
Django, so processes without Django can import it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Final

from celery import signals
from prometheus_client import Counter, Gauge, Histogram

from workers.protocol import StreamReport

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A stream's latency (pose received -> frame sent): 20 ms is great, 100 ms is sickening.
LATENCY_MS_BUCKETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
STAGE_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.011, 0.016, 0.025, 0.05, 0.1)
FPS_BUCKETS = (5, 15, 24, 30, 45, 60, 72, 80, 90, 120, 144)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0)

# ------------------------------------------------------------------ HTTP / WebSocket

http_request_duration = Histogram(
    "vrplatform_http_request_duration_seconds",
    "HTTP request latency by resolved route pattern (not raw path), method and status class.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
ws_connections = Gauge(
    "vrplatform_websocket_connections",
    "Open WebSocket connections.",
    multiprocess_mode="livesum",
)
ws_refused = Counter(
    "vrplatform_websocket_refused",
    "Session sockets closed at connect because the process was overloaded (4503).",
)
ws_messages = Counter(
    "vrplatform_websocket_messages",
    "WebSocket messages received by event.",
    ["event"],
)

# ------------------------------------------------------------------ streams (stats reports)

stream_fps_hist = Histogram(
    "vrplatform_stream_fps",
    "Frames per second per stats report, by rung.",
    ["rung"],
    buckets=FPS_BUCKETS,
)
stream_latency_hist = Histogram(
    "vrplatform_stream_latency_seconds",
    "A stream's measured latency (pose received -> frame sent, p50 of each report), by rung.",
    ["rung"],
    buckets=LATENCY_MS_BUCKETS,
)
stream_stage_hist = Histogram(
    "vrplatform_stream_stage_seconds",
    "Per-frame stage time (p50 of each report) by stage: queue, render, convert, encode, send.",
    ["stage"],
    buckets=STAGE_BUCKETS,
)
stream_reports = Counter(
    "vrplatform_stream_reports", "Stream stats reports received.", ["rung", "encoder"]
)
# Per-stream gauges: the label set is the live streams; ``stream_forget`` removes a stream's
# series when it ends (in multi-process mode the series stays until the process restarts, so
# dashboards should join on vrplatform_stream_report_timestamp_seconds freshness).
_STREAM_GAUGE_MODE: Final = "mostrecent"
stream_fps = Gauge(
    "vrplatform_stream_current_fps",
    "Latest fps of a stream.",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
stream_bitrate = Gauge(
    "vrplatform_stream_bitrate_bps",
    "Latest sent bitrate of a stream (bits/s).",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
stream_loss = Gauge(
    "vrplatform_stream_loss_ratio",
    "Latest fraction of packets lost (0..1).",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
stream_rtt = Gauge(
    "vrplatform_stream_rtt_seconds",
    "Latest round-trip time of a stream.",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
stream_latency = Gauge(
    "vrplatform_stream_latency_latest_seconds",
    "Latest measured latency (pose received -> frame sent, p50) of a stream.",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
stream_report_ts = Gauge(
    "vrplatform_stream_report_timestamp_seconds",
    "Unix time of a stream's latest stats report.",
    ["stream_id"],
    multiprocess_mode=_STREAM_GAUGE_MODE,
)
_PER_STREAM_GAUGES = (
    stream_fps,
    stream_bitrate,
    stream_loss,
    stream_rtt,
    stream_latency,
    stream_report_ts,
)
event_send_failures = Counter(
    "vrplatform_event_send_failures",
    "After-commit events (or side effects) that could not be delivered, by event.",
    ["event"],
)
oracle_predictions = Counter(
    "vrplatform_oracle_predictions",
    "Stream forecasts that recommended a step down, by action taken.",
    ["action"],
)

# ------------------------------------------------------------------ Celery

celery_task_duration = Histogram(
    "vrplatform_celery_task_duration_seconds",
    "Celery task run time by task name and final state.",
    ["task", "state"],
    buckets=TASK_BUCKETS,
)
celery_task_failures = Counter(
    "vrplatform_celery_task_failures", "Celery task failures by task name.", ["task"]
)

# ------------------------------------------------------------------ functions others call


def ws_connected() -> None:
    ws_connections.inc()


def ws_disconnected() -> None:
    ws_connections.dec()


def ws_overloaded() -> None:
    ws_refused.inc()


def ws_message(event: str) -> None:
    # Unknown events would let a client mint label values; bucket them.
    ws_messages.labels(event=event if _known_event(event) else "other").inc()


def _known_event(event: str) -> bool:
    prefix, _, name = event.partition(":")
    return (
        prefix in {"hermes", "morpheus", "athena", "delphi"}
        and 0 < len(name) <= 40
        and name.replace("_", "").isalnum()
    )


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    http_request_duration.labels(
        route=route, method=_method(method), status=f"{status // 100}xx"
    ).observe(seconds)


def _method(method: str) -> str:
    known = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
    return method if method in known else "OTHER"


_last_seen: dict[str, float] = {}
STREAM_STALE_S = 60.0


def observe_stream_report(stream_id: str, report: StreamReport) -> None:
    """Record one per-second stats report of a stream (as the worker sent it)."""
    stream_id = stream_id[:64]
    rung, encoder = report.rung, report.encoder or "unknown"
    stream_reports.labels(rung=rung, encoder=encoder).inc()
    now = time.time()
    stream_report_ts.labels(stream_id=stream_id).set(now)
    stream_fps.labels(stream_id=stream_id).set(report.fps)
    stream_fps_hist.labels(rung=rung).observe(report.fps)
    stream_bitrate.labels(stream_id=stream_id).set(report.bitrate_bps)
    if report.loss is not None:
        stream_loss.labels(stream_id=stream_id).set(report.loss)
    if report.rtt_ms is not None:
        stream_rtt.labels(stream_id=stream_id).set(report.rtt_ms / 1000.0)
    if report.latency_ms is not None:
        stream_latency.labels(stream_id=stream_id).set(report.latency_ms.p50 / 1000.0)
        stream_latency_hist.labels(rung=rung).observe(report.latency_ms.p50 / 1000.0)
    for stage, values in report.stage_ms.items():
        stream_stage_hist.labels(stage=stage).observe(values.p50 / 1000.0)
    _last_seen[stream_id] = now
    for other, seen in list(_last_seen.items()):
        if now - seen > STREAM_STALE_S:
            stream_forget(other)


def stream_forget(stream_id: str) -> None:
    """Drop a stream's per-stream series (call when the stream stops)."""
    _last_seen.pop(stream_id, None)
    for gauge in _PER_STREAM_GAUGES:
        with contextlib.suppress(KeyError):
            gauge.remove(stream_id)


# ------------------------------------------------------------------ Celery signals

_task_started: dict[str, float] = {}


def celery_task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _task_started[task_id] = time.perf_counter()


def celery_task_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    started = _task_started.pop(task_id or "", None)
    if started is None:
        return
    name = getattr(task, "name", None) or "unknown"
    celery_task_duration.labels(task=name, state=state or "UNKNOWN").observe(
        time.perf_counter() - started
    )


def celery_task_failure(sender: Any = None, **_: Any) -> None:
    celery_task_failures.labels(task=getattr(sender, "name", None) or "unknown").inc()


def connect_celery_signals() -> None:
    """Time and count every Celery task (called from ``MonitoringConfig.ready``: every process
    that runs tasks loads the Django apps)."""
    signals.task_prerun.connect(celery_task_prerun, weak=False, dispatch_uid="vrp_prerun")
    signals.task_postrun.connect(celery_task_postrun, weak=False, dispatch_uid="vrp_postrun")
    signals.task_failure.connect(celery_task_failure, weak=False, dispatch_uid="vrp_failure")
