"""Metrics move when the things they count happen."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import shared_task
from django.test import Client
from prometheus_client import REGISTRY, generate_latest

from apps.core import instruments
from apps.monitoring import tasks
from apps.monitoring.collector import exported_metric_names, registry_for_scrape
from apps.monitoring.tests.helpers import Platform, sample, typed


def test_metrics_middleware_is_installed_first(settings: Any) -> None:
    assert settings.MIDDLEWARE[0] == "apps.monitoring.middleware.MetricsMiddleware"


def _http(route: str, method: str = "GET", status: str = "2xx") -> float:
    labels = {"route": route, "method": method, "status": status}
    return sample("vrplatform_http_request_duration_seconds_count", labels)


@pytest.mark.django_db
def test_http_request_is_observed_by_route_pattern(client: Client) -> None:
    before = _http("/healthz")
    assert client.get("/healthz").status_code == 200
    assert _http("/healthz") == before + 1


@pytest.mark.django_db
def test_http_route_label_is_the_pattern_not_the_path(client: Client) -> None:
    before = _http("<unmatched>", status="4xx")
    unmatched_before = sample(
        "vrplatform_http_request_duration_seconds_count",
        {"route": "/no/such/thing/12345", "method": "GET", "status": "4xx"},
    )
    assert client.get("/no/such/thing/12345").status_code == 404
    assert _http("<unmatched>", status="4xx") == before + 1
    assert unmatched_before == 0


@pytest.mark.django_db
def test_websocket_functions_move_gauge_and_counter() -> None:
    connections = sample("vrplatform_websocket_connections")
    instruments.ws_connected()
    instruments.ws_connected()
    instruments.ws_disconnected()
    assert sample("vrplatform_websocket_connections") == connections + 1
    instruments.ws_disconnected()
    before = sample("vrplatform_websocket_messages_total", {"event": "hermes:pose"})
    instruments.ws_message("hermes:pose")
    assert sample("vrplatform_websocket_messages_total", {"event": "hermes:pose"}) == before + 1
    other = sample("vrplatform_websocket_messages_total", {"event": "other"})
    instruments.ws_message("attacker:" + "x" * 500)
    assert sample("vrplatform_websocket_messages_total", {"event": "other"}) == other + 1


@pytest.mark.django_db
def test_stats_report_sets_stream_gauges_and_histograms(platform: Platform) -> None:
    stream = platform.streams[0]
    sid = {"stream_id": str(stream.id)}
    fps_count = sample("vrplatform_stream_fps_count", {"rung": "1080p"})
    instruments.observe_stream_report(
        str(stream.id), typed(stream, fps=71.5, rtt_ms=40.0, loss=0.03)
    )
    assert sample("vrplatform_stream_current_fps", sid) == 71.5
    assert sample("vrplatform_stream_bitrate_bps", sid) == 24_000_000
    assert sample("vrplatform_stream_loss_ratio", sid) == pytest.approx(0.03)
    assert sample("vrplatform_stream_rtt_seconds", sid) == pytest.approx(0.04)
    # The stream's one latency: the worker's measured p50, not an estimate from other fields.
    assert sample("vrplatform_stream_latency_latest_seconds", sid) == pytest.approx(0.0215)
    assert sample("vrplatform_stream_fps_count", {"rung": "1080p"}) == fps_count + 1
    assert sample("vrplatform_stream_stage_seconds_count", {"stage": "encode"}) >= 1
    instruments.stream_forget(str(stream.id))
    assert REGISTRY.get_sample_value("vrplatform_stream_current_fps", sid) is None


@pytest.fixture
def eager_celery() -> Iterator[None]:
    # Pin eager mode on the app itself (see apps/scenes/tests/conftest.py for why).
    from vrplatform.celery import app

    saved = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@shared_task(name="monitoring.tests.boom")
def boom() -> None:
    raise RuntimeError("boom")


@pytest.mark.django_db
def test_celery_task_duration_and_failures_are_observed(eager_celery: None) -> None:
    labels = {"task": "monitoring.capacity_sample", "state": "SUCCESS"}
    before = sample("vrplatform_celery_task_duration_seconds_count", labels)
    tasks.capacity_sample.delay()
    assert sample("vrplatform_celery_task_duration_seconds_count", labels) == before + 1

    # A worker records the failure instead of raising it; eager propagation would re-raise
    # before Celery sends task_failure, so run this one the way a worker does.
    from vrplatform.celery import app

    app.conf.task_eager_propagates = False
    failures = sample("vrplatform_celery_task_failures_total", {"task": "monitoring.tests.boom"})
    result = boom.delay()
    assert result.state == "FAILURE"
    after = sample("vrplatform_celery_task_failures_total", {"task": "monitoring.tests.boom"})
    assert after == failures + 1
    failed = {"task": "monitoring.tests.boom", "state": "FAILURE"}
    assert sample("vrplatform_celery_task_duration_seconds_count", failed) >= 1


@pytest.mark.django_db
def test_collector_reports_real_rows(platform: Platform) -> None:
    text = generate_latest(registry_for_scrape(multiproc_dir="")).decode()
    assert "vrplatform_sessions_active 2.0" in text
    assert "vrplatform_participants_active 3.0" in text
    assert 'vrplatform_streams_active{encoder="libx264",rung="1080p"} 2.0' in text
    assert 'vrplatform_streams_active{encoder="libx264",rung="2K"} 1.0' in text
    assert 'vrplatform_streaming_workers{state="online"} 2.0' in text
    assert 'vrplatform_streaming_workers{state="dead"} 1.0' in text
    assert 'vrplatform_streaming_worker_load{worker="gpu-a"} 0.5' in text
    assert 'vrplatform_streaming_worker_streams{worker="gpu-a"} 2.0' in text
    assert 'vrplatform_streaming_worker_capacity_streams{worker="gpu-b"} 8.0' in text
    # 3 streams now, no history: last value; ceil(3 * 1.2 / 4) = 1 worker.
    assert 'vrplatform_capacity_forecast_streams{horizon="60m"} 3.0' in text
    assert "vrplatform_streaming_workers_desired 1.0" in text


def test_collector_failure_keeps_event_metrics() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("database down")

    text = generate_latest(registry_for_scrape(multiproc_dir="", state=broken)).decode()
    assert "vrplatform_sessions_active" not in text
    assert "vrplatform_http_request_duration_seconds" in text


def test_multiprocess_mode_merges_other_processes(tmp_path: Path) -> None:
    """A process started with PROMETHEUS_MULTIPROC_DIR writes its metrics to mmap files there;
    the scrape registry reads them back (this process's own metrics are in memory)."""
    code = (
        "from apps.core import instruments\n"
        "instruments.observe_http('/api/mp', 'GET', 200, 0.2)\n"
        "instruments.ws_connected()\n"
        "from workers.protocol import StreamReport\n"
        "instruments.observe_stream_report('s1', StreamReport(t=1.0, fps=60, rung='2K'))\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=Path.cwd())
    assert list(tmp_path.glob("*.db"))
    registry = registry_for_scrape(multiproc_dir=str(tmp_path), state=lambda: {})
    text = generate_latest(registry).decode()
    assert (
        'vrplatform_http_request_duration_seconds_count{method="GET",route="/api/mp",status="2xx"}'
        " 1.0" in text
    )
    assert 'vrplatform_stream_current_fps{stream_id="s1"} 60.0' in text
    assert "vrplatform_sessions_active 0.0" in text


def test_exported_names_cover_suffixes() -> None:
    names = exported_metric_names()
    assert "vrplatform_http_request_duration_seconds_bucket" in names
    assert "vrplatform_celery_task_failures_total" in names
    assert "vrplatform_streaming_workers_desired" in names
