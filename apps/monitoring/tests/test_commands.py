"""``manage.py sample_capacity``: one capacity sample for cron setups without Celery beat."""

from io import StringIO
from typing import Any

from django.core.management import call_command

from apps.monitoring.models import CapacitySample


def test_sample_capacity_records_one_sample(db: Any) -> None:
    before = CapacitySample.objects.count()
    out = StringIO()
    call_command("sample_capacity", stdout=out)
    assert CapacitySample.objects.count() == before + 1
    sample = CapacitySample.objects.latest("sampled_at")
    assert out.getvalue().strip() == f"{sample.sampled_at.isoformat()} streams={sample.streams}"
