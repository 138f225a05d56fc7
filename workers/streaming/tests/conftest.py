import pytest


@pytest.fixture(autouse=True)
def _isolated_cache() -> None:
    """Shadow the suite-wide Django cache fixture: the streaming worker never touches
    Django (or Redis), and its tests must run with ``-p no:django`` on a bare machine."""
    return
