"""Celery tasks of monitoring (thin: they call services). Schedule them with Celery beat:
``monitoring.capacity_sample`` every 5 minutes, ``monitoring.qos_history_compact`` every
10 minutes (CELERY_BEAT_SCHEDULE in settings; or cron the ``sample_capacity`` command)."""

from typing import Any

from celery import shared_task

from apps.monitoring import services


@shared_task(name="monitoring.capacity_sample")
def capacity_sample() -> dict[str, Any]:
    sample = services.capacity_sample_take()
    pruned = services.capacity_samples_prune()
    return {"streams": sample.streams, "pruned": pruned}


@shared_task(name="monitoring.qos_history_compact")
def qos_history_compact() -> dict[str, int]:
    result = services.qos_history_compact()
    return {
        "raw_deleted": result.raw_deleted,
        "minutes_written": result.minutes_written,
        "minutes_deleted": result.minutes_deleted,
    }
