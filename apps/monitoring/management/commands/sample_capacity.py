"""Take one capacity sample now (for cron where Celery beat is not running)."""

from typing import Any

from django.core.management.base import BaseCommand

from apps.monitoring import services


class Command(BaseCommand):
    help = "Record the platform's current load as a CapacitySample (run every 5 minutes)."

    def handle(self, *args: Any, **options: Any) -> None:
        sample = services.capacity_sample_take()
        services.capacity_samples_prune()
        self.stdout.write(f"{sample.sampled_at.isoformat()} streams={sample.streams}")
