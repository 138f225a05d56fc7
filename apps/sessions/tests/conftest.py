"""Fixtures for the session tests: tokens and a fresh channel layer per test (``make_session`` is
the root conftest's; the socket helpers are in ``sockets.py``)."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from channels.layers import channel_layers

from apps.accounts.services import token_pair_issue


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each async test runs on its own event loop; channels_redis keeps loop-bound locks in the
    layer object, so every test gets a new layer (same Redis, same prefix)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def token_for(db: Any) -> Callable[[Any], str]:
    def issue(user: Any) -> str:
        return token_pair_issue(user=user).access

    return issue
