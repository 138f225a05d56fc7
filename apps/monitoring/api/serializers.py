"""Output shapes of the DelphiOracle API (documented for OpenAPI)."""

from rest_framework import serializers


class OverviewQuery(serializers.Serializer):
    window = serializers.RegexField(
        r"^\d{1,5}[smhd]$", required=False, default="1h", help_text="e.g. 15m, 1h, 24h, 7d"
    )


class StreamForecastOutput(serializers.Serializer):
    stream_id = serializers.CharField()
    session_id = serializers.CharField()
    rung = serializers.CharField()
    bandwidth_bps = serializers.IntegerField(allow_null=True)
    delay_ms = serializers.FloatField(allow_null=True)
    horizon_s = serializers.FloatField()
    confidence = serializers.FloatField()
    recommended_rung = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    needed_bps = serializers.IntegerField()
    delay_slope_ms_per_s = serializers.FloatField()
    overuse = serializers.BooleanField()


class CapacityForecastOutput(serializers.Serializer):
    current = serializers.FloatField()
    streams = serializers.DictField(child=serializers.FloatField(), help_text="horizon -> streams")
    workers_desired = serializers.IntegerField()
    method = serializers.CharField()


class PredictionsOutput(serializers.Serializer):
    capacity = CapacityForecastOutput()
    streams = StreamForecastOutput(many=True)


class OverviewOutput(serializers.Serializer):
    at = serializers.DateTimeField()
    window_s = serializers.IntegerField()
    now = serializers.JSONField(help_text="sessions, participants, streams (by rung), workers")
    window = serializers.JSONField(help_text="latency_ms p50/p99, fps p50/p1, streams max/mean")
