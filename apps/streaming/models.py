"""MorpheusVR control plane: streaming workers, streams and their stats history."""

import hashlib
import uuid

from django.db import models
from django.utils import timezone


def token_digest(token: str) -> str:
    """What we store for a worker token: its SHA-256 hex digest (never the token itself)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class StreamingWorker(models.Model):
    class Status(models.TextChoices):
        OFFLINE = "offline"  # not connected (never, or disconnected cleanly)
        ONLINE = "online"
        DRAINING = "draining"  # connected, keeps its streams, gets no new ones
        DEAD = "dead"  # went silent; its streams were placed elsewhere

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OFFLINE)
    # Reported on register: encoders that actually open, GPU, renderer, max streams...
    capabilities = models.JSONField(default=dict, blank=True)
    max_streams = models.PositiveIntegerField(default=0)
    load = models.FloatField(default=0.0)
    # The consumer (channel name) currently connected for this worker; commands go there.
    channel_name = models.CharField(max_length=255, blank=True, default="")
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("manage_workers", "Can manage streaming workers")]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Stream(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # created; waiting for a worker (queued when worker is null)
        STARTING = "starting"  # sent to a worker, offer/answer in flight
        STREAMING = "streaming"  # the worker reports frames sent
        STOPPED = "stopped"
        FAILED = "failed"

    ACTIVE = (Status.PENDING, Status.STARTING, Status.STREAMING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    participant = models.ForeignKey(
        "hermes.Participant", on_delete=models.CASCADE, related_name="streams"
    )
    session = models.ForeignKey(
        "hermes.VRSession", on_delete=models.CASCADE, related_name="streams"
    )
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="streams")
    worker = models.ForeignKey(
        StreamingWorker, null=True, blank=True, on_delete=models.SET_NULL, related_name="streams"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    codec = models.CharField(max_length=16, default="h264")
    encoder = models.CharField(max_length=32, blank=True, default="")
    # The ladder rung the worker currently sends, and what the user asked for.
    quality_rung = models.CharField(max_length=8, blank=True, default="")
    max_quality = models.CharField(max_length=8, blank=True, default="")
    pinned_quality = models.CharField(max_length=8, blank=True, default="")
    max_bitrate_kbps = models.PositiveIntegerField(null=True, blank=True)
    offer = models.JSONField(null=True, blank=True)  # the worker's latest SDP offer
    placements = models.PositiveIntegerField(default=0)  # times placed on a worker
    stop_reason = models.CharField(max_length=256, blank=True, default="")
    # The sign-in (``apps.accounts.signins`` key: a token family) that started the stream, or
    # last asked for it; the stream ends when that sign-in does (sign-out, a replayed refresh
    # token, a password change, an OAuth2 revocation). "": a cookie session or a service.
    signin = models.CharField(max_length=80, blank=True, default="", db_index=True)
    stats_summary = models.JSONField(default=dict, blank=True)
    last_stats = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    placed_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at"]
        permissions = [("view_any_stream", "Can view and control every stream")]
        indexes = [
            models.Index(fields=["status", "worker"]),
            models.Index(fields=["session", "status"]),
        ]

    def __str__(self) -> str:
        return f"stream {self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class StreamStats(models.Model):
    """One stats report from the worker (about one a second): a ``StreamReport`` of
    ``workers/protocol/`` as JSON. Kept for the recent window (``MORPHEUS_STATS_RECENT_S``),
    then folded into ``StreamStatsMinute`` rows (``apps/streaming/stats.py``)."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="stats")
    # A default, not auto_now_add: retention is tested over simulated hours of reports.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    report = models.JSONField()

    class Meta:
        ordering = ["-id"]
        default_permissions = ("view",)

    def __str__(self) -> str:
        return f"stats {self.id} of stream {self.stream_id}"


class StreamStatsMinute(models.Model):
    """One minute of a stream's per-second reports, kept for the stream's life (and
    ``MORPHEUS_STATS_MINUTES_RETENTION_DAYS`` after it ends) once the seconds are gone."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="stats_minutes")
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
            models.UniqueConstraint(fields=["stream", "minute"], name="streaming_minute_unique")
        ]

    def __str__(self) -> str:
        return f"{self.stream_id} {self.minute:%H:%M}"
