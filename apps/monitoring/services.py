"""Writes of monitoring: capacity samples. (Stream stats and their retention belong to the
streaming app; the stream forecast runs on the worker, see workers/streaming/forecast.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from apps.monitoring import selectors
from apps.monitoring.models import CapacitySample

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
    days = int(settings.MONITORING_CAPACITY_RETENTION_DAYS)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = CapacitySample.objects.filter(sampled_at__lt=cutoff).delete()
    return deleted
