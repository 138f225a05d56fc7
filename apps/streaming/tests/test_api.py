"""REST: render_start / quality_adjust / performance_metrics / render_stop and who may use them;
client signalling through the session-socket hooks; session end stops streams."""

import asyncio
from typing import Any

import pytest

from apps.core.errors import InvalidInput, NotFound
from apps.sessions.extensions import ClientContext, client_event_handler
from apps.streaming import services
from apps.streaming.models import Stream
from apps.streaming.stats import stream_stats_record
from apps.streaming.tests.messages import channel_messages, member_listener, worker_messages
from workers.protocol import parse_stream_report


@pytest.fixture
def streaming(make_user: Any, make_session: Any, online_worker: Any, bearer_client: Any) -> Any:
    class Setup:
        worker = online_worker("w", max_streams=4)
        owner = make_user()
        session = make_session(owner)
        client = bearer_client(owner)

    return Setup


def test_render_start_returns_the_stream_and_is_idempotent(streaming: Any) -> None:
    body = {"session_id": str(streaming.session.id), "quality": "720p"}
    first = streaming.client.post("/api/morpheus/render_start", body, format="json")
    assert first.status_code == 201
    data = first.json()
    assert data["status"] == "starting"
    assert data["worker"] == "w"
    assert data["pinned_quality"] == "720p"
    again = streaming.client.post("/api/morpheus/render_start", body, format="json")
    assert again.status_code == 200
    assert again.json()["stream_id"] == data["stream_id"]


def test_render_start_for_a_session_the_user_is_not_in_is_404(
    streaming: Any, make_user: Any, bearer_client: Any
) -> None:
    outsider = bearer_client(make_user())
    response = outsider.post(
        "/api/morpheus/render_start", {"session_id": str(streaming.session.id)}, format="json"
    )
    assert response.status_code == 404
    assert Stream.objects.count() == 0


def test_render_start_needs_the_add_stream_permission(
    streaming: Any, make_user: Any, bearer_client: Any
) -> None:
    nobody = bearer_client(make_user("creator"))
    nobody.credentials()  # anonymous
    response = nobody.post(
        "/api/morpheus/render_start", {"session_id": str(streaming.session.id)}, format="json"
    )
    assert response.status_code == 401


def test_owner_and_operator_control_a_stream_others_get_404(
    streaming: Any, make_user: Any, bearer_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    stream, _ = services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    stream_stats_record(
        worker_id=streaming.worker.id,
        stream_id=str(stream.id),
        report=parse_stream_report(
            {
                "fps": 88.5,
                "rung": "1080p",
                "frames_sent": 10,
                "bitrate_bps": 9_000_000,
                "encoder": "libx264",
                "latency_ms": {"p50": 20.0, "p95": 25.0, "p99": 30.0},
                "stage_ms": {"render": {"p50": 5.0}},
                "t": 1.0,
            }
        ),
    )
    stranger = bearer_client(make_user())
    operator = bearer_client(make_user("operator"))
    url = f"/api/morpheus/performance_metrics?stream_id={stream.id}"
    assert stranger.get(url).status_code == 404
    mine = streaming.client.get(url)
    assert mine.status_code == 200
    metrics = mine.json()
    assert metrics["fps"] == 88.5
    assert metrics["rung"] == "1080p"
    assert metrics["encoder"] == "libx264"
    assert metrics["latency_ms"]["p99"] == 30.0
    assert metrics["status"] == "streaming"
    assert len(metrics["history"]) == 1
    assert metrics["history"][0]["latency_ms"] == 20.0  # the same measured p50 everywhere
    by_session = operator.get(
        f"/api/morpheus/performance_metrics?session_id={streaming.session.id}"
    )
    assert by_session.status_code == 200
    assert by_session.json()["streams"][0]["stream_id"] == str(stream.id)

    adjust = {"stream_id": str(stream.id), "quality": "720p", "max_bitrate_kbps": 8000}
    assert stranger.put("/api/morpheus/quality_adjust", adjust, format="json").status_code == 404
    worker_messages(streaming.worker)
    with django_capture_on_commit_callbacks(execute=True):
        response = streaming.client.put("/api/morpheus/quality_adjust", adjust, format="json")
    assert response.status_code == 200
    assert response.json()["pinned_quality"] == "720p"
    sent = worker_messages(streaming.worker)
    assert sent == [
        {
            "type": "quality",
            "stream_id": str(stream.id),
            "max_quality": None,
            "pinned_quality": "720p",
            "max_bitrate_kbps": 8000,
        }
    ]
    bad = streaming.client.put(
        "/api/morpheus/quality_adjust", {**adjust, "quality": "8K"}, format="json"
    )
    assert bad.status_code == 400

    stop = f"/api/morpheus/render_stop?stream_id={stream.id}"
    assert stranger.delete(stop).status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.delete(stop)
    assert response.status_code == 200
    assert response.json()["status"] == "stopped"
    assert worker_messages(streaming.worker) == [
        {"type": "stream_stop", "stream_id": str(stream.id), "reason": "user_stopped"}
    ]


def _ctx(stream: Stream, user_id: int | None = None) -> ClientContext:
    return ClientContext(
        user_id=user_id or stream.user_id,
        session_id=stream.session_id,
        participant_id=stream.participant_id,
        role="host",
        channel_name="test",
    )


@pytest.mark.django_db(transaction=True)
def test_client_signals_reach_only_the_streams_worker(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    from apps.accounts.services import roles_sync

    roles_sync()
    worker = online_worker("w", max_streams=4)
    owner = make_user()
    session = make_session(owner)
    stream, _ = services.stream_start(user=owner, session_id=session.id)
    worker_messages(worker)
    handler = client_event_handler("morpheus:signal")
    assert handler is not None
    answer = {"type": "answer", "sdp": "v=0\r\n"}
    asyncio.run(handler(_ctx(stream), {"stream_id": str(stream.id), "answer": answer}))
    candidate = {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0"}
    asyncio.run(handler(_ctx(stream), {"stream_id": str(stream.id), "candidate": candidate}))
    sent = worker_messages(worker)
    assert [m["type"] for m in sent] == ["signal", "signal"]
    assert sent[0]["sdp"] == answer
    assert sent[1]["candidate"]["candidate"] == candidate["candidate"]
    # Invalid SDP / candidates and someone else's stream are refused with codes, not crashes.
    for data in (
        {"stream_id": str(stream.id), "answer": {"type": "offer", "sdp": "x"}},
        {"stream_id": str(stream.id), "answer": "not an object"},
        {"stream_id": str(stream.id), "candidate": {"candidate": 7}},
        {"stream_id": str(stream.id)},
    ):
        with pytest.raises(InvalidInput):
            asyncio.run(handler(_ctx(stream), data))
    intruder = make_user()
    with pytest.raises(NotFound):
        asyncio.run(
            handler(_ctx(stream, intruder.pk), {"stream_id": str(stream.id), "answer": answer})
        )
    with pytest.raises(NotFound):
        asyncio.run(handler(_ctx(stream), {"stream_id": "nope", "answer": answer}))
    assert worker_messages(worker) == []


def test_session_end_stops_its_streams_and_tells_the_client(
    streaming: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from apps.sessions import services as session_services

    stream, _ = services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    worker_messages(streaming.worker)
    listener = member_listener(streaming.session.id, streaming.owner.pk)
    with django_capture_on_commit_callbacks(execute=True):
        session_services.session_end(session_id=streaming.session.id)
    stream.refresh_from_db()
    assert stream.status == Stream.Status.STOPPED
    assert stream.stop_reason == "session_ended"
    assert worker_messages(streaming.worker) == [
        {"type": "stream_stop", "stream_id": str(stream.id), "reason": "session_ended"}
    ]
    events = [m for m in channel_messages(listener) if m.get("event", "").startswith("morpheus")]
    assert events[0]["data"] == {"stream_id": str(stream.id), "reason": "session_ended"}


def test_an_operator_mutes_a_participants_voice_on_the_sessions_worker(
    streaming: Any, make_user: Any, bearer_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    stream, _ = services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    body = {
        "session_id": str(streaming.session.id),
        "participant_id": stream.participant_id,
        "muted": True,
    }
    # The participant themself (and anyone else but staff) may not: it is an operator's power.
    assert streaming.client.put("/api/morpheus/voice_mute", body, format="json").status_code == 403
    operator = bearer_client(make_user("operator"))
    worker_messages(streaming.worker)
    with django_capture_on_commit_callbacks(execute=True):
        response = operator.put("/api/morpheus/voice_mute", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["workers"] == 1
    assert worker_messages(streaming.worker) == [
        {
            "type": "voice_mute",
            "session_id": str(streaming.session.id),
            "participant_id": str(stream.participant_id),
            "muted": True,
        }
    ]
    # A participant of another session, or none: 404, and no worker hears of it.
    other = {**body, "participant_id": stream.participant_id + 999}
    with django_capture_on_commit_callbacks(execute=True):
        assert operator.put("/api/morpheus/voice_mute", other, format="json").status_code == 404
    assert worker_messages(streaming.worker) == []
    bad = operator.put("/api/morpheus/voice_mute", {**body, "muted": "loud"}, format="json")
    assert bad.status_code == 400


def test_an_operators_mute_reaches_a_worker_that_starts_the_session_later(
    streaming: Any, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The mute is kept on the participant: a stream started afterwards (a failover, another
    participant's stream on a new worker) carries it in its stream_start; an unmute clears it."""
    stream, _ = services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    services.voice_mute(
        session_id=streaming.session.id, participant_id=stream.participant_id, muted=True
    )
    services.stream_stop(stream=stream, reason="user_stopped")
    worker_messages(streaming.worker)
    with django_capture_on_commit_callbacks(execute=True):
        again, _ = services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    start = next(m for m in worker_messages(streaming.worker) if m["type"] == "stream_start")
    assert start["voice_muted"] == [str(stream.participant_id)]
    services.voice_mute(
        session_id=streaming.session.id, participant_id=stream.participant_id, muted=False
    )
    services.stream_stop(stream=again, reason="user_stopped")
    worker_messages(streaming.worker)
    with django_capture_on_commit_callbacks(execute=True):
        services.stream_start(user=streaming.owner, session_id=streaming.session.id)
    start = next(m for m in worker_messages(streaming.worker) if m["type"] == "stream_start")
    assert start["voice_muted"] == []
