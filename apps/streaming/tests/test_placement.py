"""Placement: sticky per session, least-loaded otherwise, 503 no_capacity with a queue
position, queued streams start when capacity frees, dead workers' streams move."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from apps.core.errors import ServiceUnavailable
from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker
from apps.streaming.tests.messages import channel_messages, member_listener, worker_messages


def start(user: Any, session: Any, **kw: Any) -> Stream:
    stream, created = services.stream_start(user=user, session_id=session.id, **kw)
    assert created
    return stream


@pytest.mark.django_db
def test_streams_of_one_session_stick_to_its_worker(
    make_user: Any, make_session: Any, online_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    busy = online_worker("busy", max_streams=4)
    idle = online_worker("idle", max_streams=4)
    host, guest = make_user(), make_user()
    session = make_session(host)
    with django_capture_on_commit_callbacks(execute=True):
        first = start(host, session)
    # Load the first worker's peer up so that least-loaded would pick the other one.
    assert first.worker_id in (busy.id, idle.id)
    from apps.sessions import services as session_services

    session_services.participant_join(session_id=session.id, user=guest)
    other = make_session(make_user())
    with django_capture_on_commit_callbacks(execute=True):
        second = start(guest, session)
        elsewhere = start(other.owner, other)
    assert second.worker_id == first.worker_id  # sticky
    assert elsewhere.worker_id != first.worker_id  # least loaded: the empty one
    sent = worker_messages(busy if first.worker_id == busy.id else idle)
    starts = [m for m in sent if m["type"] == "stream_start"]
    assert {m["stream_id"] for m in starts} == {str(first.id), str(second.id)}
    assert starts[0]["scene_url"] == "pattern:"
    assert starts[0]["participant_id"] == str(first.participant_id)


@pytest.mark.django_db
def test_least_loaded_worker_is_chosen(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    a = online_worker("a", max_streams=2, load=0.5)
    b = online_worker("b", max_streams=8, load=0.0)
    s1_user = make_user()
    s1 = start(s1_user, make_session(s1_user))
    # a: 0/2, b: 0/8 tie -> by reported load: b. Next: b is at 1/8, a still 0/2 -> a.
    s2_user = make_user()
    s2 = start(s2_user, make_session(s2_user))
    assert s1.worker_id == b.id
    assert s2.worker_id == a.id


@pytest.mark.django_db
def test_dead_or_draining_workers_get_nothing(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    stale = online_worker("stale")
    StreamingWorker.objects.filter(pk=stale.pk).update(
        last_heartbeat=timezone.now() - timedelta(seconds=60)
    )
    draining = online_worker("draining")
    services.worker_drain(worker=draining)
    user = make_user()
    with pytest.raises(ServiceUnavailable) as exc:
        start(user, make_session(user))
    assert exc.value.code == "no_capacity"


@pytest.mark.django_db
def test_no_capacity_queues_and_starts_when_a_stream_stops(
    make_user: Any, make_session: Any, online_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    worker = online_worker("solo", max_streams=1)
    a, b, c = make_user(), make_user(), make_user()
    running = start(a, make_session(a))
    with pytest.raises(ServiceUnavailable) as first:
        services.stream_start(user=b, session_id=make_session(b).id)
    with pytest.raises(ServiceUnavailable) as second:
        services.stream_start(user=c, session_id=make_session(c).id)
    assert first.value.code == "no_capacity"
    assert first.value.detail["queue_position"] == 1
    assert second.value.detail["queue_position"] == 2
    queued = Stream.objects.get(pk=first.value.detail["stream_id"])
    assert queued.status == Stream.Status.PENDING
    assert queued.worker is None
    worker_messages(worker)
    with django_capture_on_commit_callbacks(execute=True):
        services.stream_stop(stream=running)
    queued.refresh_from_db()
    assert queued.worker_id == worker.id
    assert queued.status == Stream.Status.STARTING
    sent = worker_messages(worker)
    assert [m["type"] for m in sent] == ["stream_stop", "stream_start"]
    assert sent[1]["stream_id"] == str(queued.id)


@pytest.mark.django_db
def test_no_capacity_is_503_with_queue_position(
    make_user: Any, make_session: Any, bearer_client: Any
) -> None:
    user = make_user()
    session = make_session(user)
    response = bearer_client(user).post(
        "/api/morpheus/render_start", {"session_id": str(session.id)}, format="json"
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "no_capacity"
    assert error["detail"]["queue_position"] == 1
    assert response["Retry-After"] == "5"


@pytest.mark.django_db
def test_silent_worker_is_reaped_and_its_streams_move(
    make_user: Any, make_session: Any, online_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    doomed = online_worker("doomed", max_streams=2)
    user = make_user()
    session = make_session(user)
    stream = start(user, session)
    assert stream.worker_id == doomed.id
    survivor = online_worker("survivor", max_streams=2)
    StreamingWorker.objects.filter(pk=doomed.pk).update(
        last_heartbeat=timezone.now() - services.dead_after() - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        reaped = services.workers_reap()
    assert reaped == [doomed.id]
    doomed.refresh_from_db()
    stream.refresh_from_db()
    assert doomed.status == StreamingWorker.Status.DEAD
    assert stream.worker_id == survivor.id
    assert stream.placements == 2
    starts = [m for m in worker_messages(survivor) if m["type"] == "stream_start"]
    assert [m["stream_id"] for m in starts] == [str(stream.id)]
    # The new worker's offer reaches the owner as a new render_started.
    listener = member_listener(session.id, user.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.stream_offer(
            worker_id=survivor.id, stream_id=str(stream.id), sdp={"type": "offer", "sdp": "v=0"}
        )
    events = channel_messages(listener)
    assert [e["event"] for e in events] == ["morpheus:render_started"]
    assert events[0]["data"]["placement"] == 2
    # Reaping again is a no-op.
    assert services.workers_reap() == []
    # The dead worker was only partitioned: its heartbeat is refused, and when it registers
    # again still running the moved stream, it is told to stop it.
    assert not services.worker_heartbeat(worker_id=doomed.id, load=0.1)
    with django_capture_on_commit_callbacks(execute=True):
        services.worker_register(
            worker_id=doomed.id,
            channel_name=doomed.test_channel,
            capabilities={"max_streams": 2, "active_streams": [str(stream.id)]},
        )
    assert worker_messages(doomed)[-1] == {
        "type": "stream_stop",
        "stream_id": str(stream.id),
        "reason": "moved",
    }
    stream.refresh_from_db()
    assert stream.worker_id == survivor.id


def two_users_streaming(
    make_user: Any, make_session: Any, online_worker: Any, capture: Any
) -> tuple[Any, Any, Stream, Stream]:
    """(worker, host, host's stream, another user's stream), the starts drained."""
    worker = online_worker("w", max_streams=4)
    host, other = make_user(), make_user()
    with capture(execute=True):
        mine = start(host, make_session(host))
        theirs = start(other, make_session(other))
    worker_messages(worker)
    return worker, host, mine, theirs


def assert_only_mine_stopped(worker: Any, mine: Stream, theirs: Stream, reason: str) -> None:
    """The worker was told to stop ``mine`` and it ended with ``reason``; ``theirs`` runs on."""
    sent = worker_messages(worker)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == Stream.Status.STOPPED
    assert mine.stop_reason == reason
    assert theirs.status in Stream.ACTIVE
    assert any(m.get("type") == "stream_stop" and m.get("stream_id") == str(mine.id) for m in sent)


@pytest.mark.django_db
def test_disabling_an_account_stops_its_streams_and_only_its_streams(
    make_user: Any, make_session: Any, online_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Closing a disabled user's sockets is not enough: their headset would keep streaming and
    sending poses over WebRTC. The worker is told to stop, the stream ends."""
    worker, host, mine, theirs = two_users_streaming(
        make_user, make_session, online_worker, django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):
        host.is_active = False
        host.save()
    assert_only_mine_stopped(worker, mine, theirs, "user_inactive")


@pytest.mark.django_db
def test_taking_away_the_right_to_stream_stops_the_streams(
    make_user: Any, make_session: Any, online_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """A role taken away (admin panel, user_set_roles): the sockets learn the new roles, and
    if the user may no longer stream, their running streams stop too. A change that keeps the
    right (participant -> creator) stops nothing."""
    from apps.accounts.services import user_set_roles

    worker, host, mine, theirs = two_users_streaming(
        make_user, make_session, online_worker, django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):
        user_set_roles(user=host, roles=["creator"])
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        host.groups.clear()
    assert_only_mine_stopped(worker, mine, theirs, "permission_revoked")
