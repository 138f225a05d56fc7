"""Models of monitoring (DelphiOracle): capacity history and downsampled QoS history."""

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


class StreamStatsMinute(models.Model):
    """Per-minute summary of one stream's per-second stats reports, kept after the raw rows
    are deleted (QoS history retention)."""

    stream_id = models.UUIDField(db_index=True)  # no FK: history outlives deleted streams
    session_id = models.UUIDField(null=True, blank=True)
    minute = models.DateTimeField(db_index=True)
    samples = models.PositiveIntegerField(default=0)
    rung = models.CharField(max_length=8, blank=True, default="")  # most frequent
    fps_mean = models.FloatField(null=True, blank=True)
    fps_min = models.FloatField(null=True, blank=True)
    bitrate_mean_bps = models.FloatField(null=True, blank=True)
    loss_mean = models.FloatField(null=True, blank=True)
    rtt_mean_ms = models.FloatField(null=True, blank=True)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-minute"]
        default_permissions = ("view",)
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "minute"], name="monitoring_minute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.stream_id} {self.minute:%H:%M}"
