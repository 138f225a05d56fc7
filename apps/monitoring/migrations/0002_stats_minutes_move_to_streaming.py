"""Per-minute stream stats move to the streaming app, which owns every stream stats table
(one owner, one retention policy). Rows of streams that still exist are copied first."""

from django.db import migrations

FIELDS = (
    "minute",
    "samples",
    "rung",
    "fps_mean",
    "fps_min",
    "bitrate_mean_bps",
    "loss_mean",
    "rtt_mean_ms",
    "latency_p50_ms",
    "latency_p99_ms",
)


def copy_minutes(apps, schema_editor):  # type: ignore[no-untyped-def]
    old = apps.get_model("monitoring", "StreamStatsMinute")
    new = apps.get_model("streaming", "StreamStatsMinute")
    stream = apps.get_model("streaming", "Stream")
    existing = set(stream.objects.values_list("id", flat=True))
    rows = [
        new(stream_id=row.stream_id, **{f: getattr(row, f) for f in FIELDS})
        for row in old.objects.iterator()
        if row.stream_id in existing
    ]
    new.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0001_initial"),
        ("streaming", "0002_stats_minutes"),
    ]

    operations = [
        migrations.RunPython(copy_minutes, migrations.RunPython.noop),
        migrations.DeleteModel(name="StreamStatsMinute"),
    ]
