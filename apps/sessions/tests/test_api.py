"""REST endpoints of hermes: who may do what, and what they get back."""

from typing import Any

import pytest

from apps.accounts.tests.factories import UserFactory
from apps.sessions.extensions import session_ended
from apps.sessions.models import Participant, SessionStatus, VRSession

pytestmark = pytest.mark.django_db


def create(client: Any, **body: Any) -> Any:
    return client.post("/api/hermes/session_create", {"name": "room", **body}, format="json")


def test_create_returns_ws_url_and_makes_owner_host(
    make_user: Any, bearer_client: Any, settings: Any
) -> None:
    settings.PUBLIC_URL = "https://vr.example.test"
    host = make_user("participant")
    response = create(bearer_client(host), max_participants=4)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "open"
    assert body["max_participants"] == 4
    assert body["ws_url"]["path"] == f"/ws/hermes/sessions/{body['id']}/"
    assert body["ws_url"]["url"] == f"wss://vr.example.test/ws/hermes/sessions/{body['id']}/"
    assert body["invite_token"] is None  # public sessions have none
    participant = Participant.objects.get(session_id=body["id"])
    assert (participant.user_id, participant.role) == (host.pk, "host")


def test_create_needs_a_role_and_respects_the_limit(
    make_user: Any, bearer_client: Any, settings: Any
) -> None:
    nobody = UserFactory(roles=[])
    assert create(bearer_client(nobody)).status_code == 403
    settings.MAX_CONCURRENT_SESSIONS = 2
    client = bearer_client(make_user("participant"))
    assert create(client).status_code == 201
    assert create(client).status_code == 201
    response = create(client)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_limit_reached"


def test_invite_session_token_visible_to_host_only(make_user: Any, bearer_client: Any) -> None:
    host, other = make_user("participant"), make_user("participant")
    body = create(bearer_client(host), visibility="invite").json()
    assert body["invite_token"]
    status = bearer_client(other).get(f"/api/hermes/session_status/{body['id']}")
    assert status.status_code == 200  # invite sessions are reachable by id
    assert status.json()["invite_token"] is None


def test_status_shows_participants_streams_and_state(
    make_user: Any, bearer_client: Any, make_session: Any
) -> None:
    host = make_user("participant")
    session = make_session(host)
    body = bearer_client(host).get(f"/api/hermes/session_status/{session.id}").json()
    assert body["status"] == "open"
    assert body["streams"] == []
    assert body["state"] == {}
    assert body["state_version"] == 0
    assert [(p["user_id"], p["role"], p["connected"]) for p in body["participants"]] == [
        (host.pk, "host", False)
    ]
    assert body["ended_at"] is None
    assert body["created_at"]


def test_private_session_is_404_to_others_but_not_operators(
    make_user: Any, bearer_client: Any, make_session: Any
) -> None:
    host, stranger, operator = make_user(), make_user(), make_user("operator")
    session = make_session(host, visibility="private")
    for path in (
        f"/api/hermes/session_status/{session.id}",
        f"/api/hermes/sessions/{session.id}/join",
    ):
        method = "get" if "status" in path else "post"
        response = getattr(bearer_client(stranger), method)(path, {}, format="json")
        assert response.status_code == 404, path
    response = bearer_client(stranger).delete(f"/api/hermes/session_end/{session.id}")
    assert response.status_code == 404
    assert (
        bearer_client(operator).get(f"/api/hermes/session_status/{session.id}").status_code == 200
    )


def test_list_shows_public_live_and_own_sessions(
    make_user: Any, bearer_client: Any, make_session: Any
) -> None:
    alice, bob, operator = make_user(), make_user(), make_user("operator")
    public = make_session(alice, name="public")
    private = make_session(alice, name="private", visibility="private")
    invite = make_session(alice, name="invite", visibility="invite")
    bobs = make_session(bob, name="bobs", visibility="private")
    ended = make_session(alice, name="ended")
    VRSession.objects.filter(pk=ended.pk).update(status=SessionStatus.ENDED)

    def names(user: Any) -> set[str]:
        response = bearer_client(user).get("/api/hermes/sessions")
        assert response.status_code == 200
        return {s["name"] for s in response.json()}

    assert names(bob) == {"public", "bobs"}
    assert names(alice) == {"public", "private", "invite", "ended"}
    assert names(operator) == {"public", "private", "invite", "bobs", "ended"}
    assert public
    assert private
    assert invite
    assert bobs


def test_join_rules(make_user: Any, bearer_client: Any, make_session: Any) -> None:
    host, guest, late, player = make_user(), make_user(), make_user(), make_user()
    public = make_session(host, max_participants=2)
    response = bearer_client(guest).post(
        f"/api/hermes/sessions/{public.id}/join", {"role": "spectator"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["participant"]["role"] == "spectator"
    # The spectator takes no seat: the host and one player fill the session.
    seated = bearer_client(player).post(f"/api/hermes/sessions/{public.id}/join", {}, format="json")
    assert seated.status_code == 200
    full = bearer_client(late).post(f"/api/hermes/sessions/{public.id}/join", {}, format="json")
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "session_full"
    bad_role = bearer_client(late).post(
        f"/api/hermes/sessions/{public.id}/join", {"role": "host"}, format="json"
    )
    assert bad_role.status_code == 400

    invite = make_session(host, visibility="invite")
    url = f"/api/hermes/sessions/{invite.id}/join"
    denied = bearer_client(late).post(url, {}, format="json")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "invite_required"
    wrong = bearer_client(late).post(url, {"invite_token": "nope"}, format="json")
    assert wrong.status_code == 403
    ok = bearer_client(late).post(url, {"invite_token": invite.invite_token}, format="json")
    assert ok.status_code == 200
    assert ok.json()["participant"]["role"] == "participant"


def test_join_by_invite_token(make_user: Any, bearer_client: Any, make_session: Any) -> None:
    host, guest = make_user(), make_user()
    private = make_session(host, visibility="private")
    client = bearer_client(guest)
    missing = client.post("/api/hermes/sessions/join", {"invite_token": "x" * 20}, format="json")
    assert missing.status_code == 404
    response = client.post(
        "/api/hermes/sessions/join", {"invite_token": private.invite_token}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["session"]["id"] == str(private.id)
    # A member now sees the private session.
    assert client.get(f"/api/hermes/session_status/{private.id}").status_code == 200


def test_transmit_needs_membership_and_checks_state_version(
    make_user: Any, bearer_client: Any, make_session: Any
) -> None:
    host, stranger = make_user(), make_user()
    session = make_session(host)
    url = f"/api/hermes/session_transmit/{session.id}"
    denied = bearer_client(stranger).put(url, {"event": "x", "payload": {}}, format="json")
    assert denied.status_code == 403
    client = bearer_client(host)
    first = client.put(
        url,
        {"event": "light", "state": {"key": "light", "value": "on", "version": 0}},
        format="json",
    )
    assert first.status_code == 200
    assert first.json()["state_version"] == 1
    stale = client.put(
        url, {"state": {"key": "light", "value": "off", "version": 0}}, format="json"
    )
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "state_conflict"
    assert stale.json()["error"]["detail"] == {"state_version": 1}
    session.refresh_from_db()
    assert session.state == {"light": "on"}
    assert session.state_version == 1
    invalid = client.put(url, {"event": "bad name!"}, format="json")
    assert invalid.status_code == 400
    empty = client.put(url, {}, format="json")
    assert empty.status_code == 400


def test_end_permissions_and_signal(
    make_user: Any,
    bearer_client: Any,
    make_session: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    host, member, operator = make_user(), make_user(), make_user("operator")
    session = make_session(host)
    bearer_client(member).post(f"/api/hermes/sessions/{session.id}/join", {}, format="json")
    url = f"/api/hermes/session_end/{session.id}"
    assert bearer_client(member).delete(url).status_code == 403

    ended: list[Any] = []

    def receiver(sender: Any, session_id: Any, **kwargs: Any) -> None:
        ended.append(session_id)

    session_ended.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = bearer_client(host).delete(url)
    finally:
        session_ended.disconnect(receiver)
    assert response.status_code == 200
    assert response.json()["status"] == "ended"
    assert ended == [session.id]
    assert not Participant.objects.filter(session=session, left_at__isnull=True).exists()
    # Ended sessions take no more transmits or joins; an operator may end any session.
    transmit = bearer_client(host).put(
        f"/api/hermes/session_transmit/{session.id}", {"event": "x"}, format="json"
    )
    assert transmit.status_code == 409
    assert transmit.json()["error"]["code"] == "session_ended"
    other = make_session(host)
    assert bearer_client(operator).delete(f"/api/hermes/session_end/{other.id}").status_code == 200
