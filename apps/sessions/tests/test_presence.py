"""A web process that dies with sockets open: its participants' connection counts are undone."""

from typing import Any

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from apps.sessions import presence, services
from apps.sessions.extensions import session_group
from apps.sessions.models import Participant
from apps.streaming.tests.messages import channel_messages

pytestmark = pytest.mark.django_db


def _client() -> Any:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)


def test_a_dead_processs_sockets_are_taken_off_and_live_ones_kept(
    make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    owner, guest = make_user("participant"), make_user("participant")
    session = services.session_create(owner=owner, name="room")
    host = services.participant_connect(session_id=session.id, user=owner).participant
    services.participant_connect(session_id=session.id, user=guest)
    guest_p = services.participant_connect(session_id=session.id, user=guest).participant
    assert guest_p.connections == 2
    # The crashed process held both of the guest's sockets and one of the host's; the host's
    # other socket is in a live process.
    client = _client()
    dead_conns, dead_alive = presence._keys("crashed.1")
    live_conns, live_alive = presence._keys("alive.2")
    client.hset(dead_conns, mapping={str(guest_p.pk): 2})
    client.hset(live_conns, mapping={str(host.pk): 1})
    client.set(live_alive, 1, ex=30)
    services.participant_connect(session_id=session.id, user=owner)
    listener = async_to_sync(get_channel_layer().new_channel)()
    async_to_sync(get_channel_layer().group_add)(session_group(session.id), listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert presence.presence_reap() == 2
        guest_p.refresh_from_db()
        assert (guest_p.connections, guest_p.left_at is not None) == (0, True)
        assert Participant.objects.get(pk=host.pk).connections == 2  # untouched
        assert not client.exists(dead_conns)
        assert client.exists(live_conns)
        left = [m for m in channel_messages(listener) if m["event"] == "hermes:participant_left"]
        assert [m["data"]["participant_id"] for m in left] == [guest_p.pk]
        assert presence.presence_reap() == 0  # idempotent
    finally:
        client.delete(dead_conns, live_conns, live_alive, dead_alive)
        client.close()
