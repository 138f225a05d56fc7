"""The web app's browser tests use the shared browser plugin (apps/core/testing_browser.py,
registered in the root conftest.py); ``platform`` is its ``live_platform`` under the name these
tests have always used."""

from __future__ import annotations

import pytest

from apps.core.testing_browser import Server


@pytest.fixture
def platform(live_platform: Server) -> Server:
    return live_platform
