"""The platform as real processes, driven from outside (``make test-integration``).

One module-scoped platform: its own PostgreSQL and Redis (so the fault tests may restart
them without touching the suite's), migrated by ``manage.py migrate``, demo accounts, two
daphne processes, a Celery worker on the real Redis broker and a streaming worker. The tests
reach it only over HTTP, WebSocket and WebRTC; none of them opens the database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from apps.core.testing import Processes
from apps.core.tests.integration.harness import SETTINGS, Platform, Services


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with tempfile.TemporaryDirectory(prefix="vrp-integration-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        services = Services(work)
        processes = Processes(work)
        env = {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "MEDIA_ROOT": str(work / "media"),
        }
        platform = Platform(services, processes, env)
        try:
            platform.manage("migrate", "-v0")
            platform.manage("create_demo_users")
            platform.web = [processes.daphne(f"daphne{i}", env) for i in (1, 2)]
            platform.celery()
            yield platform
        finally:
            processes.stop_all()
            services.close()
