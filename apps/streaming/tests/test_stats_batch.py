"""The batched stats path (``stats_batch``): a bounded number of SQL statements per batch and
per flush whatever the number of streams, the live second readable before the flush, rung
changes and forecasts acted on at once, and another worker's streams refused."""

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.sessions import services as session_services
from apps.streaming import services
from apps.streaming.models import Stream, StreamStats
from apps.streaming.selectors import stream_metrics, streams_live
from apps.streaming.stats_batch import StatsBuffer, stream_stats_batch_record, stream_stats_flush
from apps.streaming.tests.messages import channel_messages, member_listener
from apps.streaming.tests.test_stats import _forecast, _report
from workers.protocol import StatsReport

pytestmark = pytest.mark.django_db

STREAMS = 4


@pytest.fixture
def streams(make_user: Any, make_session: Any, online_worker: Any) -> list[Stream]:
    online_worker("w", max_streams=STREAMS)
    owner = make_user()
    session = make_session(owner)
    out = []
    for _ in range(STREAMS):
        user = make_user()
        session_services.participant_join(session_id=session.id, user=user)
        stream, _ = services.stream_start(user=user, session_id=session.id)
        out.append(stream)
    return out


def _batch(streams: list[Stream], second: int, **fields: Any) -> list[StatsReport]:
    return [StatsReport(str(s.id), _report(second, **fields)) for s in streams]


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]


def test_a_batch_is_one_query_and_a_flush_three_whatever_the_streams(
    streams: list[Stream], settings: Any
) -> None:
    settings.MORPHEUS_STATS_FLUSH_S = 10
    cache.clear()
    worker_id = streams[0].worker_id
    assert worker_id is not None
    buffer = StatsBuffer()
    # The first second changes every stream (its rung, its first frames): told at once.
    stream_stats_batch_record(worker_id=worker_id, reports=_batch(streams, 1), buffer=buffer)
    assert StreamStats.objects.count() == STREAMS
    for second in range(2, 10):
        with CaptureQueriesContext(connection) as queries:
            accepted = stream_stats_batch_record(
                worker_id=worker_id, reports=_batch(streams, second), buffer=buffer
            )
        assert len(accepted) == STREAMS
        assert len(_statements(queries)) == 1, _statements(queries)
    # Not in PostgreSQL yet, but every reader of the live second sees it.
    assert StreamStats.objects.count() == STREAMS
    stream = Stream.objects.get(pk=streams[0].pk)
    assert stream.last_stats["t"] == _report(1).t
    assert stream_metrics(stream)["reported_at_ms"] == _report(9).t
    assert stream_metrics(stream)["history"][-1]["t"] == _report(9).t
    live = {s["id"]: s for s in streams_live()}
    assert live[str(stream.pk)]["fps"] == _report(9).fps
    # The tenth batch flushes: lock, one UPDATE, one INSERT for all streams' seconds.
    with CaptureQueriesContext(connection) as queries:
        stream_stats_batch_record(worker_id=worker_id, reports=_batch(streams, 10), buffer=buffer)
    assert len(_statements(queries)) == 1 + 3, _statements(queries)
    assert StreamStats.objects.count() == STREAMS * 10
    stream.refresh_from_db()
    assert stream.last_stats["t"] == _report(10).t
    assert stream.stats_summary["reports"] == 10
    assert stream.status == Stream.Status.STREAMING
    assert stream_stats_flush(buffer=buffer) == 0  # nothing left


def test_a_rung_change_and_a_forecast_are_told_at_once(
    streams: list[Stream], django_capture_on_commit_callbacks: Any
) -> None:
    cache.clear()
    stream = streams[0]
    assert stream.worker_id is not None
    viewer = member_listener(stream.session_id, stream.user_id)
    buffer = StatsBuffer()
    record = {"worker_id": stream.worker_id, "buffer": buffer}
    with django_capture_on_commit_callbacks(execute=True):
        stream_stats_batch_record(**record, reports=_batch([stream], 1, rung="2K"))
        stream_stats_batch_record(**record, reports=_batch([stream], 2, rung="2K"))
        stream_stats_batch_record(
            **record, reports=_batch([stream], 3, rung="1080p", forecast=_forecast("720p"))
        )
        stream_stats_batch_record(
            **record, reports=_batch([stream], 4, rung="1080p", forecast=_forecast("720p"))
        )
    events = [m["event"] for m in channel_messages(viewer)]
    assert events.count("morpheus:quality_changed") == 1
    assert events.count("delphi:oracle_prediction") == 1  # the cooldown holds for batches too
    stream.refresh_from_db()
    assert stream.quality_rung == "1080p"
    stream_stats_flush(buffer=buffer)
    stored = [
        r["t"]
        for r in StreamStats.objects.filter(stream=stream)
        .order_by("created_at", "id")
        .values_list("report", flat=True)
    ]
    assert sorted(stored) == [_report(i).t for i in range(1, 5)]


def test_another_workers_stream_is_refused_and_leaks_nothing(
    streams: list[Stream], online_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache.clear()
    other = online_worker("other")
    buffer = StatsBuffer()
    mine = streams[0]
    foreign = [
        StatsReport(str(streams[1].id), _report(1)),  # runs on "w", not "other"
        StatsReport("7b4c1c9e-0000-4000-8000-000000000000", _report(1)),
        StatsReport("not-a-uuid", _report(1)),
    ]
    with caplog.at_level("WARNING", logger="apps.streaming.selectors"):
        accepted = stream_stats_batch_record(worker_id=other.id, reports=foreign, buffer=buffer)
    assert accepted == []
    assert caplog.text.count("does not run") == 3
    assert buffer.pending == []
    assert StreamStats.objects.count() == 0
    assert stream_metrics(Stream.objects.get(pk=streams[1].pk))["reported_at_ms"] is None
    # In the same batch, this worker's own stream is still taken.
    assert mine.worker_id is not None
    accepted = stream_stats_batch_record(
        worker_id=mine.worker_id,
        reports=[StatsReport(str(mine.id), _report(1)), *foreign[1:]],
        buffer=buffer,
    )
    assert [r.stream_id for r in accepted] == [str(mine.id)]
