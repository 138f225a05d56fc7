from typing import Any

from rest_framework import serializers

from apps.streaming.models import Stream
from apps.streaming.services import QUALITIES, render_started_data
from workers.protocol import CODECS


class RenderStartIn(serializers.Serializer):
    session_id = serializers.UUIDField()
    quality = serializers.ChoiceField(choices=QUALITIES, required=False)
    codec = serializers.ChoiceField(choices=CODECS, required=False)


class QualityAdjustIn(serializers.Serializer):
    stream_id = serializers.UUIDField()
    quality = serializers.ChoiceField(choices=QUALITIES)
    max_bitrate_kbps = serializers.IntegerField(
        required=False, allow_null=True, min_value=100, max_value=500_000
    )


class VoiceMuteIn(serializers.Serializer):
    session_id = serializers.UUIDField()
    participant_id = serializers.IntegerField(min_value=1)
    muted = serializers.BooleanField(default=True)


class VoiceMuteOut(serializers.Serializer):
    session_id = serializers.UUIDField()
    participant_id = serializers.IntegerField()
    muted = serializers.BooleanField()
    workers = serializers.IntegerField(help_text="streaming workers told")


class IceServerOut(serializers.Serializer):
    urls = serializers.ListField(child=serializers.CharField())
    username = serializers.CharField(required=False, help_text="TURN: '<expiry>:<user id>'")
    credential = serializers.CharField(required=False, help_text="TURN: short-lived password")


class IceConfigOut(serializers.Serializer):
    ice_servers = IceServerOut(many=True)
    ice_transport_policy = serializers.ChoiceField(choices=["all", "relay"])
    expires_at = serializers.IntegerField(
        allow_null=True, help_text="unix time the TURN credentials expire (null: no TURN)"
    )


class StreamOut(serializers.ModelSerializer):
    stream_id = serializers.UUIDField(source="id")
    session_id = serializers.UUIDField()
    participant_id = serializers.IntegerField()
    worker = serializers.SerializerMethodField()
    quality = serializers.SerializerMethodField()
    offer = serializers.SerializerMethodField()

    class Meta:
        model = Stream
        fields = [
            "stream_id",
            "session_id",
            "participant_id",
            "status",
            "worker",
            "quality",
            "quality_rung",
            "max_quality",
            "pinned_quality",
            "max_bitrate_kbps",
            "codec",
            "encoder",
            "placements",
            "stop_reason",
            "created_at",
            "placed_at",
            "started_at",
            "stopped_at",
            "offer",
        ]

    def get_worker(self, stream: Stream) -> str | None:
        return stream.worker.name if stream.worker else None

    def get_quality(self, stream: Stream) -> str:
        """What the user asked for: a pinned rung, or auto."""
        return stream.pinned_quality or "auto"

    def get_offer(self, stream: Stream) -> dict[str, Any] | None:
        # A client that missed ``morpheus:render_started`` can pick the offer up here.
        if stream.offer and stream.is_active:
            return render_started_data(stream)["offer"]  # type: ignore[no-any-return]
        return None


class StreamMetricsOutput(serializers.Serializer):
    """One stream's performance (the shape of ``selectors.stream_metrics``)."""

    stream_id = serializers.UUIDField()
    session_id = serializers.UUIDField()
    status = serializers.CharField()
    worker = serializers.CharField(allow_null=True)
    fps = serializers.FloatField(allow_null=True)
    target_fps = serializers.FloatField(allow_null=True)
    paced_fps = serializers.FloatField(allow_null=True, help_text="at most the display's rate")
    render_scale = serializers.FloatField(
        allow_null=True, help_text="below 1: rendered smaller to hold the frame rate"
    )
    latency_ms = serializers.JSONField(allow_null=True, help_text="p50/p95/p99 pose→sent, ms")
    stage_ms = serializers.JSONField(help_text="per stage: p50/p95/p99 ms")
    bitrate_bps = serializers.FloatField(allow_null=True)
    target_bitrate_bps = serializers.FloatField(allow_null=True)
    loss = serializers.FloatField(allow_null=True)
    rtt_ms = serializers.FloatField(allow_null=True)
    jitter_ms = serializers.FloatField(allow_null=True)
    rung = serializers.CharField(allow_null=True)
    encoder = serializers.CharField(allow_null=True)
    frames_sent = serializers.IntegerField(allow_null=True)
    frames_dropped = serializers.IntegerField(allow_null=True)
    client = serializers.JSONField(allow_null=True)
    reported_at_ms = serializers.FloatField(allow_null=True)
    summary = serializers.JSONField()
    history = serializers.ListField(child=serializers.JSONField())


class SessionMetricsOutput(serializers.Serializer):
    session_id = serializers.UUIDField()
    streams = StreamMetricsOutput(many=True)
