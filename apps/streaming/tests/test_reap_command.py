"""``manage.py reap_workers``: silent workers are declared dead from cron too."""

from datetime import timedelta
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.utils import timezone

from apps.streaming.models import StreamingWorker


def test_reap_workers_declares_silent_workers_dead(online_worker: Any) -> None:
    silent = online_worker("silent")
    alive = online_worker("alive")
    StreamingWorker.objects.filter(pk=silent.pk).update(
        last_heartbeat=timezone.now() - timedelta(minutes=5)
    )
    out = StringIO()
    call_command("reap_workers", stdout=out)
    assert out.getvalue().strip() == "1 worker(s) declared dead."
    silent.refresh_from_db()
    alive.refresh_from_db()
    assert silent.status == StreamingWorker.Status.DEAD
    assert alive.status == StreamingWorker.Status.ONLINE
