"""Celery tasks of monitoring (thin: they call services). Schedule them with Celery beat:
``monitoring.capacity_sample`` every 5 minutes (CELERY_BEAT_SCHEDULE in settings; or cron the
``sample_capacity`` command). Stream stats retention is the streaming app's
(``streaming.stats_compact``)."""

from typing import Any

from celery import shared_task

from apps.monitoring import services


@shared_task(name="monitoring.capacity_sample")
def capacity_sample() -> dict[str, Any]:
    sample = services.capacity_sample_take()
    pruned = services.capacity_samples_prune()
    return {"streams": sample.streams, "pruned": pruned}
