"""Stream stats: one report recorded (queries, events), the retention policy over a simulated
long stream, and the viewer notice of the worker's forecast."""

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.streaming import services
from apps.streaming.models import Stream, StreamStats, StreamStatsMinute
from apps.streaming.selectors import report_latency_ms, stats_window, stream_metrics
from apps.streaming.stats import stream_stats_compact, stream_stats_record
from apps.streaming.tests.messages import channel_messages, member_listener
from workers.protocol import ForecastReport, Percentiles, StreamReport

pytestmark = pytest.mark.django_db


@pytest.fixture
def stream(make_user: Any, make_session: Any, online_worker: Any) -> Stream:
    online_worker("w", max_streams=4)
    owner = make_user()
    session = make_session(owner)
    stream, _ = services.stream_start(user=owner, session_id=session.id)
    return stream


def _report(i: int, **fields: Any) -> StreamReport:
    base: dict[str, Any] = {
        "t": 1_000_000.0 + i,
        "rung": "1080p",
        "fps": float(i % 90),
        "frames_sent": i + 1,
        "bitrate_bps": 20_000_000,
        "encoder": "libx264",
        "latency_ms": Percentiles(20.0 + i % 7, 30.0, 40.0),
    }
    return StreamReport(**(base | fields))


def test_a_report_costs_three_queries_and_sets_the_one_latency(stream: Stream) -> None:
    assert stream.worker_id is not None
    stream_stats_record(worker_id=stream.worker_id, stream_id=str(stream.id), report=_report(1))
    with CaptureQueriesContext(connection) as queries:
        assert stream_stats_record(
            worker_id=stream.worker_id, stream_id=str(stream.id), report=_report(2)
        )
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]  # the test's own
    assert len(statements) == 3, [sql[:80] for sql in statements]
    stream.refresh_from_db()
    assert stream.status == Stream.Status.STREAMING
    assert report_latency_ms(stream.last_stats) == 22.0
    assert stream_metrics(stream)["latency_ms"]["p50"] == 22.0


def test_retention_over_a_simulated_three_hour_stream(stream: Stream, settings: Any) -> None:
    """A report every 10 s for 3 hours: the recent window stays per-second, every older minute
    is one row with the right figures, and nothing is lost or counted twice."""
    settings.MORPHEUS_STATS_RECENT_S = 600
    settings.MORPHEUS_STATS_COMPACT_EVERY = 6  # about once a simulated minute
    assert stream.worker_id is not None
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=3)
    n = 3 * 3600 // 10
    for i in range(n):
        at = start + timedelta(seconds=10 * i)
        assert stream_stats_record(
            worker_id=stream.worker_id, stream_id=str(stream.id), report=_report(i), now=at
        )
    now = start + timedelta(seconds=10 * n)
    stream_stats_compact(now=now)  # the periodic pass: what the stream left unfolded

    cutoff = (now - timedelta(seconds=600)).replace(second=0, microsecond=0)
    raw = StreamStats.objects.filter(stream=stream)
    assert not raw.filter(created_at__lt=cutoff).exists()
    assert raw.count() == (now - cutoff).total_seconds() // 10  # the window, whole
    minutes = list(StreamStatsMinute.objects.filter(stream=stream).order_by("minute"))
    assert len(minutes) == (cutoff - start).total_seconds() // 60  # the stream's whole life
    assert [m.minute for m in minutes] == [
        start + timedelta(minutes=k) for k in range(len(minutes))
    ]
    assert all(m.samples == 6 for m in minutes)
    assert sum(m.samples for m in minutes) + raw.count() == n  # nothing lost or doubled
    for k in (0, 57, len(minutes) - 1):
        fps = [float((6 * k + j) % 90) for j in range(6)]
        assert minutes[k].fps_mean == pytest.approx(sum(fps) / 6)
        assert minutes[k].fps_min == min(fps)
        assert minutes[k].rung == "1080p"
        assert minutes[k].latency_p99_ms is not None
    # Idempotent; the window's figures come from both tables.
    again = stream_stats_compact(now=now)
    assert (again.raw_deleted, again.minutes_written) == (0, 0)
    latencies, fps_values = stats_window(since=start, until=now)
    assert len(fps_values) == n
    assert 20.0 <= min(latencies) <= max(latencies) <= 26.0


def test_minutes_of_an_ended_stream_expire_after_the_retention(
    stream: Stream, settings: Any
) -> None:
    settings.MORPHEUS_STATS_MINUTES_RETENTION_DAYS = 30
    now = timezone.now()
    StreamStatsMinute.objects.create(stream=stream, minute=now - timedelta(days=40), samples=60)
    assert stream_stats_compact(now=now).minutes_deleted == 0  # still live: kept
    services.stream_stop(stream=stream)
    Stream.objects.filter(pk=stream.pk).update(stopped_at=now - timedelta(days=31))
    assert stream_stats_compact(now=now).minutes_deleted == 1


def _forecast(rung: str | None) -> ForecastReport:
    return ForecastReport(
        bandwidth_bps=30e6,
        horizon_s=3.0,
        confidence=0.8,
        recommended_rung=rung,
        reason="bandwidth falling",
        rung="2K",
        needed_bps=40e6,
    )


def test_worker_forecast_notice_reaches_the_viewer_only_once_per_cooldown(
    stream: Stream, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    assert stream.worker_id is not None
    viewer = member_listener(stream.session_id, stream.user_id)
    neighbour = member_listener(stream.session_id, make_user().pk)
    record = {"worker_id": stream.worker_id, "stream_id": str(stream.id)}
    with django_capture_on_commit_callbacks(execute=True):
        stream_stats_record(**record, report=_report(1, rung="2K", forecast=_forecast(None)))
        stream_stats_record(**record, report=_report(2, rung="1080p", forecast=_forecast("1080p")))
        stream_stats_record(**record, report=_report(3, rung="1080p", forecast=_forecast("720p")))
    events = [m for m in channel_messages(viewer) if m["event"] == "delphi:oracle_prediction"]
    assert len(events) == 1  # the third report is inside the cooldown
    data = events[0]["data"]
    assert (data["action"], data["quality"], data["hold_s"]) == ("step_down", "1080p", 10.0)
    assert data["forecast"]["rung"] == "2K"
    assert channel_messages(neighbour) == []  # someone else's stream: not their business
    stored = StreamStats.objects.filter(stream=stream).order_by("id")[1].report
    assert stored["forecast"]["recommended_rung"] == "1080p"  # recorded with the report
