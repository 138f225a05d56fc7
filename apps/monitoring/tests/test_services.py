"""Capacity samples on real rows (stream stats retention and forecast notices: apps/streaming)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitoring import services
from apps.monitoring.models import CapacitySample
from apps.monitoring.tests.helpers import Platform

pytestmark = pytest.mark.django_db


def test_capacity_sample_counts_live_things(platform: Platform) -> None:
    s = services.capacity_sample_take()
    assert (s.streams, s.sessions, s.participants) == (3, 2, 3)
    assert (s.workers_online, s.worker_capacity) == (2, 12)
    old = CapacitySample.objects.create(sampled_at=timezone.now() - timedelta(days=60))
    assert services.capacity_samples_prune() == 1
    assert not CapacitySample.objects.filter(pk=old.pk).exists()
