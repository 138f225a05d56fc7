"""The ``platform`` fixture: real rows of the sessions and streaming apps for the monitoring
tests (helpers.py has the plain helpers)."""

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from apps.monitoring.tests.helpers import Platform
from apps.sessions.tests.factories import ParticipantFactory, VRSessionFactory
from apps.streaming.tests.factories import StreamFactory, StreamingWorkerFactory


@pytest.fixture
def platform(make_user: Callable[..., Any]) -> Platform:
    """Two live sessions (3 current participants, one who left) and an ended one; two
    workers online and one dead; three active streams and a stopped one."""
    owner, guest, third = make_user("participant"), make_user("participant"), make_user()
    live = VRSessionFactory(name="live", owner=owner, status="active")
    other = VRSessionFactory(name="open", owner=guest, status="open")
    ended = VRSessionFactory(name="old", owner=owner, status="ended")
    p = Platform(sessions=[live, other, ended])
    for session, user, left in [
        (live, owner, None),
        (live, guest, None),
        (live, third, timezone.now()),
        (other, guest, None),
        (ended, owner, None),
    ]:
        p.participants.append(ParticipantFactory(session=session, user=user, left_at=left))
    w1 = StreamingWorkerFactory(
        name="gpu-a", token_hash="a" * 64, status="online", max_streams=4, load=0.5
    )
    w2 = StreamingWorkerFactory(
        name="gpu-b", token_hash="b" * 64, status="online", max_streams=8, load=0.1
    )
    StreamingWorkerFactory(name="gpu-c", token_hash="c" * 64, status="dead")
    p.workers = [w1, w2]
    for participant, worker, rung, status in [
        (p.participants[0], w1, "1080p", "streaming"),
        (p.participants[1], w1, "2K", "streaming"),
        (p.participants[3], w2, "1080p", "starting"),
        (p.participants[0], w2, "720p", "stopped"),
    ]:
        p.streams.append(
            StreamFactory(participant=participant, worker=worker, status=status, quality_rung=rung)
        )
    return p
