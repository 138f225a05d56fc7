"""A stream ends with the sign-in that started it (sign-out, a replayed refresh token, a
password change, an OAuth2 revocation) and when its participant leaves the session.

Closing the sockets is not enough: the headset's WebRTC stream runs straight to the worker,
so without this it kept streaming (and hearing the session) after the sign-in was over.
"""

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
)

from apps.streaming.models import Stream
from apps.streaming.tests.messages import worker_messages
from apps.streaming.tests.test_placement import assert_only_mine_stopped

pytestmark = pytest.mark.django_db


class Setup:
    """A worker, one stream started by ``client`` (the host's sign-in) and another user's
    stream that must run on."""

    def __init__(self, make_user: Any, make_session: Any, online_worker: Any, clients: Any) -> None:
        self.worker = online_worker("w", max_streams=4)
        self.host, self.other = make_user(), make_user()
        self.session = make_session(self.host)
        self.client = clients(self.host)
        self.other_client = clients(self.other)
        self.other_session = make_session(self.other)

    def start(self, capture: Any, client: Any = None) -> tuple[Stream, Stream]:
        with capture(execute=True):
            mine = self._start(client or self.client, self.session)
            theirs = self._start(self.other_client, self.other_session)
        worker_messages(self.worker)
        return mine, theirs

    @staticmethod
    def _start(client: Any, session: Any) -> Stream:
        response = client.post(
            "/api/morpheus/render_start", {"session_id": str(session.id)}, format="json"
        )
        assert response.status_code == 201, response.content
        return Stream.objects.get(pk=response.json()["stream_id"])


@pytest.fixture
def setup(make_user: Any, make_session: Any, online_worker: Any, bearer_client: Any) -> Setup:
    return Setup(make_user, make_session, online_worker, bearer_client)


def test_the_stream_records_its_signin(setup: Setup, django_capture_on_commit_callbacks: Any):
    mine, _ = setup.start(django_capture_on_commit_callbacks)
    family = setup.client.token_pair.user.refresh_tokens.get().family
    assert mine.signin == f"jwt:{family}"


def test_logout_stops_the_stream_of_that_signin_only(
    setup: Setup, bearer_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mine, theirs = setup.start(django_capture_on_commit_callbacks)
    # Another sign-in of the same user (a second device) signing out stops nothing here.
    elsewhere = bearer_client(setup.host)
    with django_capture_on_commit_callbacks(execute=True):
        response = elsewhere.post(
            "/api/athena/logout", {"refresh": elsewhere.token_pair.refresh}, format="json"
        )
    assert response.status_code == 204
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        response = setup.client.post(
            "/api/athena/logout", {"refresh": setup.client.token_pair.refresh}, format="json"
        )
    assert response.status_code == 204
    assert_only_mine_stopped(setup.worker, mine, theirs, "signed_out")


def test_a_replayed_refresh_token_stops_the_stream(
    setup: Setup, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mine, theirs = setup.start(django_capture_on_commit_callbacks)
    body = {"refresh": setup.client.token_pair.refresh}
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.post("/api/athena/wisdom_refresh", body, format="json").status_code == 200
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE  # a normal refresh keeps the sign-in
    with django_capture_on_commit_callbacks(execute=True):
        replay = api_client.post("/api/athena/wisdom_refresh", body, format="json")
    assert replay.json()["error"]["code"] == "refresh_token_reused"
    assert_only_mine_stopped(setup.worker, mine, theirs, "refresh_token_reused")


def test_a_password_change_ends_every_signin_and_its_stream(
    setup: Setup, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    mine, theirs = setup.start(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        setup.host.set_password("a-new-passphrase-for-kate")
        setup.host.save()
    assert_only_mine_stopped(setup.worker, mine, theirs, "password_changed")
    # The old tokens are dead: the access token reads nothing, the refresh token is refused.
    assert setup.client.get("/api/athena/profile").status_code == 401
    refreshed = api_client.post(
        "/api/athena/wisdom_refresh", {"refresh": setup.client.token_pair.refresh}, format="json"
    )
    assert refreshed.json()["error"]["code"] == "token_revoked"


def test_a_hasher_upgrade_at_signin_is_not_a_password_change(
    setup: Setup, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    from django.contrib.auth.hashers import make_password

    setup.host.password = make_password("old-passphrase", hasher="md5")
    setup.host.save()
    mine, _ = setup.start(django_capture_on_commit_callbacks)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    with django_capture_on_commit_callbacks(execute=True):
        assert setup.host.check_password("old-passphrase")  # rehashed and saved
    assert setup.host.password.startswith("pbkdf2_")
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE


def test_leaving_the_session_stops_the_stream(
    setup: Setup, django_capture_on_commit_callbacks: Any
) -> None:
    mine, theirs = setup.start(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = setup.client.post(f"/api/hermes/sessions/{setup.session.id}/leave")
    assert response.status_code in (200, 204), response.content
    assert_only_mine_stopped(setup.worker, mine, theirs, "left")


def _oauth_signin(user: Any) -> tuple[Any, str, str]:
    """An OAuth2 sign-in as the authorization code grant leaves it: an access token and its
    refresh token of one token family. Returns (application, access, refresh)."""
    application = get_application_model().objects.create(
        name="headset-web",
        user=user,
        client_type="confidential",
        authorization_grant_type="authorization-code",
        client_secret="s3cret-client-secret-value",
        redirect_uris="https://client.example.test/callback",
    )
    access, refresh = secrets.token_urlsafe(30), secrets.token_urlsafe(30)
    token = get_access_token_model().objects.create(
        user=user,
        application=application,
        token=access,
        expires=timezone.now() + timedelta(minutes=15),
        scope="sessions streaming",
    )
    get_refresh_token_model().objects.create(
        user=user,
        application=application,
        token=refresh,
        access_token=token,
        token_family=uuid.uuid4(),
    )
    return application, access, refresh


def test_an_oauth2_signin_keeps_its_stream_through_refreshes_and_ends_it_on_revocation(
    setup: Setup, api_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    import base64

    application, access, refresh = _oauth_signin(setup.host)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    mine, theirs = setup.start(django_capture_on_commit_callbacks, client=api_client)
    assert mine.signin.startswith("oauth2:")
    api_client.credentials()
    basic = (
        "Basic "
        + base64.b64encode(f"{application.client_id}:s3cret-client-secret-value".encode()).decode()
    )
    with django_capture_on_commit_callbacks(execute=True):
        rotated = api_client.post(
            "/o/token/",
            {"grant_type": "refresh_token", "refresh_token": refresh},
            HTTP_AUTHORIZATION=basic,
        )
    assert rotated.status_code == 200, rotated.content
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE  # the refresh replaced the token it spent
    with django_capture_on_commit_callbacks(execute=True):
        revoked = api_client.post(
            "/o/revoke_token/",
            {"token": rotated.json()["refresh_token"], "token_type_hint": "refresh_token"},
            HTTP_AUTHORIZATION=basic,
        )
    assert revoked.status_code == 200
    assert_only_mine_stopped(setup.worker, mine, theirs, "token_revoked")


def test_leaving_over_the_socket_stops_the_stream_a_dropped_connection_does_not(
    setup: Setup, django_capture_on_commit_callbacks: Any
) -> None:
    """``hermes:session_leave`` on the participant's last socket is a leave (the consumer
    passes ``leaving``); a socket that merely dropped may come back, its stream runs on."""
    from apps.sessions.services import participant_connect, participant_disconnect

    mine, theirs = setup.start(django_capture_on_commit_callbacks)
    participant_connect(session_id=setup.session.id, user=setup.host, role=None, privileged=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert participant_disconnect(participant_id=mine.participant_id)
    mine.refresh_from_db()
    assert mine.status in Stream.ACTIVE
    participant_connect(session_id=setup.session.id, user=setup.host, role=None, privileged=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert participant_disconnect(participant_id=mine.participant_id, leaving=True)
    assert_only_mine_stopped(setup.worker, mine, theirs, "left")


@pytest.fixture
def fresh_channel_layer() -> Any:
    """Each async test runs on its own event loop; channels_redis keeps loop-bound state."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)
def test_hermes_session_leave_over_the_socket_stops_the_stream(
    make_user: Any, make_session: Any, online_worker: Any, fresh_channel_layer: Any
) -> None:
    """The socket path for real (committed transactions, so the after-commit signal runs)."""
    import asyncio

    from apps.accounts.services import roles_sync, token_pair_issue
    from apps.sessions.tests.sockets import expect, joined_socket, send
    from apps.streaming import services

    roles_sync()  # transaction=True flushed the role groups
    online_worker("w", max_streams=4)
    host = make_user()
    session = make_session(host)
    token = token_pair_issue(user=host).access
    stream, _ = services.stream_start(user=host, session_id=session.id)

    async def leave() -> None:
        comm, _ = await joined_socket(session.id, token)
        await send(comm, "hermes:session_leave")
        # A leave has no reply; the consumer handles messages in order, so the heartbeat's
        # answer means the leave (and its commit) is done.
        await send(comm, "athena:heartbeat", {"t": 1})
        await expect(comm, "athena:heartbeat")
        await comm.disconnect()

    asyncio.run(leave())
    stream.refresh_from_db()
    assert stream.status == Stream.Status.STOPPED
    assert stream.stop_reason == "left"
