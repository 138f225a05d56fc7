"""These tests are pure Python (no Django, no Redis): they run with ``-p no:django``."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache() -> None:
    # Overrides the suite-wide autouse fixture of the same name, which needs Django settings
    # and Redis; nothing here touches the cache.
    return
