"""Capacity samples, QoS history retention and the stream oracle, on real rows."""

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from apps.monitoring import services
from apps.monitoring.models import CapacitySample, StreamStatsMinute
from apps.monitoring.tests.conftest import Platform, report, sample
from apps.sessions.extensions import member_group

pytestmark = pytest.mark.django_db


def test_capacity_sample_counts_live_things(platform: Platform) -> None:
    s = services.capacity_sample_take()
    assert (s.streams, s.sessions, s.participants) == (3, 2, 3)
    assert (s.workers_online, s.worker_capacity) == (2, 12)
    old = CapacitySample.objects.create(sampled_at=timezone.now() - timedelta(days=60))
    assert services.capacity_samples_prune() == 1
    assert not CapacitySample.objects.filter(pk=old.pk).exists()


def _stats_at(stream: Any, at: Any, **fields: Any) -> Any:
    from apps.streaming.models import StreamStats

    row = StreamStats.objects.create(stream=stream, report=report(stream, **fields))
    StreamStats.objects.filter(pk=row.pk).update(created_at=at)  # auto_now_add
    return row


def test_qos_compaction_downsamples_old_seconds_and_expires_minutes(platform: Platform) -> None:
    from apps.streaming.models import StreamStats

    stream = platform.streams[0]
    now = timezone.now().replace(second=30, microsecond=0)
    minute = (now - timedelta(hours=2)).replace(second=0)
    for i, fps in enumerate([90.0, 80.0, 70.0]):
        _stats_at(stream, minute + timedelta(seconds=i), fps=fps, rung="2K" if i else "1080p")
    recent = _stats_at(stream, now - timedelta(minutes=5), fps=60.0)
    ancient = StreamStatsMinute.objects.create(
        stream_id=stream.id, minute=now - timedelta(days=90), samples=60
    )

    result = services.qos_history_compact(now=now)

    assert (result.raw_deleted, result.minutes_written, result.minutes_deleted) == (3, 1, 1)
    assert list(StreamStats.objects.values_list("pk", flat=True)) == [recent.pk]
    row = StreamStatsMinute.objects.get(stream_id=stream.id, minute=minute)
    assert row.samples == 3
    assert row.fps_mean == pytest.approx(80.0)
    assert row.fps_min == 70.0
    assert row.rung == "2K"
    assert row.session_id == stream.session_id
    assert row.latency_p50_ms == pytest.approx(39.0)  # 4 + 6 + 3 + 11 + 30/2
    assert not StreamStatsMinute.objects.filter(pk=ancient.pk).exists()
    # Idempotent: nothing left to do.
    again = services.qos_history_compact(now=now)
    assert (again.raw_deleted, again.minutes_written) == (0, 0)


def _declining(stream: Any, n: int = 10) -> None:
    """A 2K stream whose bandwidth estimate falls 3 Mbit/s a second."""
    from apps.streaming.models import StreamStats

    t0 = timezone.now().timestamp() * 1000.0
    for i in range(n):
        StreamStats.objects.create(
            stream=stream,
            report=report(
                stream, t=t0 + i * 1000.0, rung="2K", remb_bps=75e6 - 3e6 * i, bitrate_bps=40e6
            ),
        )


def test_oracle_steps_down_and_tells_the_viewer_only(
    platform: Platform, django_capture_on_commit_callbacks: Any
) -> None:
    stream = platform.streams[1]  # 2K, participant[1]'s stream in the live session
    other = platform.streams[0]  # same session, another user
    _declining(stream)
    layer = get_channel_layer()
    viewer = async_to_sync(layer.new_channel)()
    neighbour = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(member_group(stream.session_id, stream.user_id), viewer)
    async_to_sync(layer.group_add)(member_group(other.session_id, other.user_id), neighbour)
    before = sample("vrplatform_oracle_predictions_total", {"action": "step_down"})

    with django_capture_on_commit_callbacks(execute=True):
        decision = services.stream_forecast_and_act(stream.id)

    assert decision.action == "step_down"
    assert decision.step_down_to == "1080p"
    assert decision.hold_s == 10.0
    message = async_to_sync(layer.receive)(viewer)
    assert message["type"] == "client.event"
    assert message["event"] == "delphi:oracle_prediction"
    assert message["data"]["stream_id"] == str(stream.id)
    assert message["data"]["quality"] == "1080p"
    assert message["data"]["forecast"]["rung"] == "2K"
    assert sample("vrplatform_oracle_predictions_total", {"action": "step_down"}) == before + 1
    # Nobody else in the session hears about someone else's stream.
    with pytest.raises(TimeoutError):
        async_to_sync(_receive_quickly)(layer, neighbour)
    # Inside the cooldown the oracle does not act again.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.stream_forecast_and_act(stream.id).action == "cooldown"


async def _receive_quickly(layer: Any, channel: str) -> Any:
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.2)


def test_oracle_respects_a_pin_and_leaves_healthy_streams_alone(
    platform: Platform, django_capture_on_commit_callbacks: Any
) -> None:
    pinned, healthy = platform.streams[1], platform.streams[0]
    pinned.pinned_quality = "2K"
    pinned.save(update_fields=["pinned_quality"])
    _declining(pinned)
    with django_capture_on_commit_callbacks(execute=True):
        decision = services.stream_forecast_and_act(pinned.id)
    assert decision.action == "pinned"
    assert decision.step_down_to is None
    for _ in range(6):
        from apps.streaming.models import StreamStats

        StreamStats.objects.create(stream=healthy, report=report(healthy))
    assert services.stream_forecast_and_act(healthy.id).action == "none"


def test_forecast_step_down_reaches_the_streams_worker_as_a_quality_hint(
    platform: Platform, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.streaming.services import stream_forecast_apply, worker_group
    from workers.protocol import QualityHint, parse_worker_message

    stream = platform.streams[1]  # 2K on worker gpu-a
    _declining(stream)
    layer = get_channel_layer()
    worker_channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(worker_group(stream.worker_id), worker_channel)

    with django_capture_on_commit_callbacks(execute=True):
        capped = stream_forecast_apply(worker_id=stream.worker_id, stream_id=str(stream.id))

    assert capped == "1080p"
    command = async_to_sync(layer.receive)(worker_channel)
    hint = parse_worker_message(command["message"])  # what the worker will parse
    assert isinstance(hint, QualityHint)
    assert (hint.stream_id, hint.max_quality, hint.hold_s) == (str(stream.id), "1080p", 10.0)
    # Another worker's stream id is refused: nothing is decided for it.
    other_worker = platform.workers[1]
    assert stream_forecast_apply(worker_id=other_worker.id, stream_id=str(stream.id)) is None
