"""Models of monitoring (DelphiOracle): capacity history. Stream stats (per second and per
minute) belong to the streaming app; monitoring reads them through its selectors."""

from django.db import models


class CapacitySample(models.Model):
    """Platform load at one instant, sampled every few minutes (Celery beat or the
    ``sample_capacity`` command); the capacity forecast learns from this history."""

    sampled_at = models.DateTimeField(db_index=True)
    streams = models.PositiveIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0)
    participants = models.PositiveIntegerField(default=0)
    workers_online = models.PositiveIntegerField(default=0)
    worker_capacity = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-sampled_at"]
        get_latest_by = "sampled_at"
        permissions = [("view_metrics", "Can view platform metrics, forecasts and dashboards")]

    def __str__(self) -> str:
        return f"{self.sampled_at:%Y-%m-%d %H:%M} {self.streams} streams"
