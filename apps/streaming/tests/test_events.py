"""After-commit events (apps/core/events.py) when the channel layer's Redis is unreachable:
the committed write stands, the request succeeds, the failure is logged and counted, and the
other after-commit work (stopping a session's streams) still runs."""

from typing import Any

import pytest

from apps.monitoring.tests.helpers import sample
from apps.sessions.models import Participant
from apps.streaming import services
from apps.streaming.models import Stream
from apps.streaming.tests.messages import channel_messages, member_listener

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


def _failures() -> float:
    return sum(
        sample("vrplatform_event_send_failures_total", {"event": event})
        for event in ("hermes:session_ended", "morpheus:render_stopped", "worker.command")
    )


def test_session_end_with_the_channel_layer_down_is_200_and_stops_its_streams(
    make_user: Any,
    make_session: Any,
    online_worker: Any,
    bearer_client: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    online_worker("w")
    owner = make_user("participant")
    session = make_session(owner)
    stream, _ = services.stream_start(user=owner, session_id=session.id)
    before = _failures()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": DEAD_REDIS, "socket_connect_timeout": 0.5}]},
        }
    }
    settings.REDIS_URL = DEAD_REDIS  # the pose store's cleanup fails too

    with django_capture_on_commit_callbacks(execute=True):
        response = bearer_client(owner).delete(f"/api/hermes/session_end/{session.id}")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ended"
    stream.refresh_from_db()
    assert stream.status == Stream.Status.STOPPED
    assert stream.stop_reason == "session_ended"
    # hermes:session_ended, morpheus:render_stopped and the worker's stream_stop were lost.
    assert _failures() >= before + 3


def test_rest_leave_tells_the_session(
    make_user: Any, make_session: Any, bearer_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    owner, guest = make_user("participant"), make_user("participant")
    session = make_session(owner)
    client = bearer_client(guest)
    assert client.post(f"/api/hermes/sessions/{session.id}/join").status_code in (200, 201)
    host_socket = member_listener(session.id, owner.pk)  # stands in for the host's socket
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from apps.sessions.extensions import session_group

    async_to_sync(get_channel_layer().group_add)(session_group(session.id), host_socket)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/hermes/sessions/{session.id}/leave").status_code in (200, 204)
    left = [m for m in channel_messages(host_socket) if m.get("event") == "hermes:participant_left"]
    participant = Participant.objects.get(session=session, user=guest)
    assert [m["data"] for m in left] == [
        {"participant_id": participant.pk, "user_id": guest.pk, "reason": "left"}
    ]


def test_spectators_take_no_participant_seat(
    make_user: Any, make_session: Any, bearer_client: Any
) -> None:
    owner = make_user("participant")
    session = make_session(owner, max_participants=2)
    player, watcher, late = (make_user("participant") for _ in range(3))
    url = f"/api/hermes/sessions/{session.id}/join"
    spectate = {"role": "spectator"}
    assert bearer_client(watcher).post(url, spectate, format="json").status_code in (200, 201)
    assert bearer_client(player).post(url).status_code in (200, 201)  # the second seat
    full = bearer_client(late).post(url)
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "session_full"
    assert bearer_client(late).post(url, spectate, format="json").status_code in (200, 201)
