"""Celery tasks (thin: they call services). Schedule ``streaming.reap_workers`` every 5 s with
beat in production (in development the worker consumer reaps on every heartbeat), and
``streaming.stats_compact`` every 10 minutes (the stats retention policy)."""

from celery import shared_task

from apps.streaming.services import workers_reap
from apps.streaming.stats import stream_stats_compact


@shared_task(name="streaming.reap_workers", ignore_result=True)
def reap_workers() -> int:
    return len(workers_reap())


@shared_task(name="streaming.stats_compact")
def stats_compact() -> dict[str, int]:
    result = stream_stats_compact()
    return {
        "raw_deleted": result.raw_deleted,
        "minutes_written": result.minutes_written,
        "minutes_deleted": result.minutes_deleted,
    }
