"""The batched stats path (protocol version 3's ``stats_batch``): per-second stream stats at
the rate of thousands of streams without one database write per stream per second.

A worker sends one batch a second with every stream's report. For each batch the platform
runs ONE query (which of the named streams this worker runs), puts each stream's live second
in the cache (one Redis round trip, ``MORPHEUS_STATS_LIVE_TTL_S``), and keeps the reports in
its connection's :class:`StatsBuffer`. Every ``MORPHEUS_STATS_FLUSH_S`` seconds, on a stream's
stop and on disconnect, the buffer goes to PostgreSQL in three statements whatever the number
of streams: lock the streams, one UPDATE of their ``last_stats``/``stats_summary``, one INSERT
of their per-second ``StreamStats`` rows. So SQL statements per second follow workers and the
flush interval, not streams.

What an operator sees does not wait for the flush: readers of the live figures go through
``selectors.latest_report`` (cache first, then the row); a report that changes what others are
told at once (the rung, the encoder, the first frames of a starting stream) takes the
single-report path (``stats.stream_stats_record``) right away, and the worker's forecast is
acted on as the report arrives. Retention is ``stats.py``'s: the rows are the same
``StreamStats`` rows, folded into minutes by the periodic ``streaming.stats_compact`` (this
path does not fold per stream, so a long stream holds up to one compaction period more).

A platform process that dies loses at most its buffers' last ``MORPHEUS_STATS_FLUSH_S``
seconds of per-second history; the live second and the minutes are unaffected.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from apps.streaming.models import Stream, StreamStats
from apps.streaming.selectors import live_key, streams_get_for_worker
from apps.streaming.stats import forecast_notify, stream_stats_record, summary_next
from workers.protocol import StatsReport, StreamReport

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    stream_id: uuid.UUID
    report: StreamReport
    stored: dict[str, Any]  # report.to_dict(), made once: it is a third of a batch's cost
    at: datetime


@dataclass(slots=True)
class StatsBuffer:
    """One worker connection's accepted reports not yet in PostgreSQL."""

    pending: list[_Pending] = field(default_factory=list)
    since: float = field(default_factory=time.monotonic)
    batches: int = 0

    def due(self) -> bool:
        """Flush now: the interval passed, or as many batches as seconds in it arrived (a
        worker sends one a second; counting them keeps the flush rate bounded however fast
        the batches come, and makes it deterministic in tests and benchmarks)."""
        interval = float(settings.MORPHEUS_STATS_FLUSH_S)
        return bool(self.pending) and (
            self.batches >= interval or time.monotonic() - self.since >= interval
        )

    def take(self) -> list[_Pending]:
        taken, self.pending = self.pending, []
        self.since, self.batches = time.monotonic(), 0
        return taken


def _changes_stream(stream: Stream, report: StreamReport) -> bool:
    """The report changes what the stream's row says others are told about at once."""
    return (
        report.rung != stream.quality_rung
        or bool(report.encoder and report.encoder != stream.encoder)
        or (stream.status == Stream.Status.STARTING and report.frames_sent > 0)
    )


def stream_stats_batch_record(
    *,
    worker_id: uuid.UUID,
    reports: list[StatsReport],
    buffer: StatsBuffer,
    now: datetime | None = None,
) -> list[StatsReport]:
    """Take one ``stats_batch`` of ``worker_id``: the reports of streams it runs are accepted
    (returned, in order); the others are dropped and logged, and nothing of them is stored
    or sent back. Flushes ``buffer`` when it is due."""
    now = now or timezone.now()
    streams = streams_get_for_worker(
        worker_id=worker_id, stream_ids=list(dict.fromkeys(r.stream_id for r in reports))
    )
    accepted: list[StatsReport] = []
    live: dict[str, dict[str, Any]] = {}
    for item in reports:
        stream = streams.get(item.stream_id)
        if stream is None:
            continue
        accepted.append(item)
        stored = live[live_key(stream.pk)] = item.stats.to_dict()
        if _changes_stream(stream, item.stats):
            # Rare (a rung step, the first frames): the single-report path tells the owner
            # now. Earlier buffered seconds of this stream go first, to keep the order.
            stream_stats_flush(buffer=buffer, stream_ids={stream.pk}, now=now)
            stream_stats_record(
                worker_id=worker_id, stream_id=item.stream_id, report=item.stats, now=now
            )
            stream.quality_rung = item.stats.rung
            stream.encoder = item.stats.encoder or stream.encoder
            if item.stats.frames_sent > 0 and stream.status == Stream.Status.STARTING:
                stream.status = Stream.Status.STREAMING
            continue
        buffer.pending.append(_Pending(stream.pk, item.stats, stored, now))
        forecast = item.stats.forecast
        if forecast is not None and forecast.recommended_rung is not None:
            forecast_notify(stream, forecast)
    if live:
        try:
            cache.set_many(live, timeout=int(settings.MORPHEUS_STATS_LIVE_TTL_S))
        except Exception:  # the cache is Redis: an outage delays the live view to the flush
            logger.warning("live stats unavailable; %d reports wait for the flush", len(live))
    buffer.batches += 1
    if buffer.due():
        stream_stats_flush(buffer=buffer, now=now)
    return accepted


@transaction.atomic
def stream_stats_flush(
    *, buffer: StatsBuffer, stream_ids: set[uuid.UUID] | None = None, now: datetime | None = None
) -> int:
    """Write ``buffer``'s reports (only those of ``stream_ids`` if given) to PostgreSQL in
    three statements; returns the number of reports written."""
    if stream_ids is None:
        pending = buffer.take()
    else:
        pending = [p for p in buffer.pending if p.stream_id in stream_ids]
        buffer.pending = [p for p in buffer.pending if p.stream_id not in stream_ids]
    if not pending:
        return 0
    now = now or timezone.now()
    streams = {
        s.pk: s
        for s in Stream.objects.select_for_update()
        .filter(pk__in={p.stream_id for p in pending})
        .only("id", "last_stats", "stats_summary", "updated_at")
    }
    rows: list[StreamStats] = []
    for p in pending:
        stream = streams.get(p.stream_id)
        if stream is None:  # deleted since: its reports go with it
            continue
        stream.stats_summary = summary_next(stream.stats_summary or {}, p.report)
        stream.last_stats = p.stored
        rows.append(StreamStats(stream_id=stream.pk, report=stream.last_stats, created_at=p.at))
    for stream in streams.values():
        stream.updated_at = now  # bulk_update does not apply auto_now
    Stream.objects.bulk_update(streams.values(), ["last_stats", "stats_summary", "updated_at"])
    StreamStats.objects.bulk_create(rows)
    return len(rows)
