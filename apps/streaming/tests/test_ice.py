"""ICE configuration: TURN REST credentials (coturn's use-auth-secret), what the browser and
the worker are given, and the settings refused at start."""

import base64
import hashlib
import hmac
import os
import subprocess
import sys
from typing import Any

import pytest
from django.test import override_settings

from apps.streaming.ice import ice_config, turn_credentials
from workers.protocol import ProtocolError, parse_worker_message
from workers.streaming.peer import ice_servers

TURN = {
    "TURN_URLS": ["turn:turn.test:3478?transport=udp", "turns:turn.test:443?transport=tcp"],
    "TURN_SHARED_SECRET": "s3cret",
    "TURN_CREDENTIAL_TTL_S": 600,
}


@override_settings(**TURN)
def test_turn_credentials_follow_the_turn_rest_scheme() -> None:
    username, credential, expires = turn_credentials(user_id=42, now=1_000_000)
    assert username == "1000600:42"
    assert expires == 1_000_600
    expected = hmac.new(b"s3cret", b"1000600:42", hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected
    # Another user's credential differs: it names its user.
    assert turn_credentials(user_id=43, now=1_000_000)[1] != credential


@override_settings(**TURN, STUN_URLS=["stun:stun.test:3478"], ICE_TRANSPORT_POLICY="relay")
def test_ice_config_gives_servers_and_policy_never_the_secret() -> None:
    config = ice_config(user_id=7, now=100)
    assert config["ice_transport_policy"] == "relay"
    assert config["expires_at"] == 700
    stun, turn = config["ice_servers"]
    assert stun == {"urls": ["stun:stun.test:3478"]}
    assert turn["urls"] == TURN["TURN_URLS"]
    assert turn["username"] == "700:7"
    assert "s3cret" not in repr(config)


@override_settings(TURN_URLS=[], STUN_URLS=[], ICE_TRANSPORT_POLICY="all")
def test_no_servers_configured_means_host_candidates_only() -> None:
    assert ice_config(user_id=1) == {
        "ice_servers": [],
        "ice_transport_policy": "all",
        "expires_at": None,
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ICE_TRANSPORT_POLICY": "relay-only"}, "ICE_TRANSPORT_POLICY must be"),
        ({"TURN_URLS": "turn:x:3478"}, "TURN_URLS needs TURN_SHARED_SECRET"),
        ({"ICE_TRANSPORT_POLICY": "relay"}, "needs TURN_URLS"),
        ({"TURN_URLS": "http://x", "TURN_SHARED_SECRET": "s"}, "is not a stun:/turn: URL"),
    ],
)
def test_bad_ice_settings_are_refused_at_start(env: dict[str, str], message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TURN_", "ICE_", "STUN_"))}
    result = subprocess.run(
        [sys.executable, "-c", "import vrplatform.settings.base"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_stream_start_carries_the_policy_and_refuses_others() -> None:
    base = {"type": "stream_start", "stream_id": "s", "session_id": "x", "scene_url": "pattern:"}
    servers = [{"urls": ["turn:t:3478"], "username": "1:2", "credential": "c"}]
    start = parse_worker_message({**base, "ice_servers": servers, "ice_transport_policy": "relay"})
    assert start.ice_transport_policy == "relay"  # type: ignore[union-attr]
    assert start.ice_servers == servers  # type: ignore[union-attr]
    with pytest.raises(ProtocolError):
        parse_worker_message({**base, "ice_transport_policy": "none"})


def test_aiortc_servers_put_the_preferred_turn_transport_first() -> None:
    servers = [{"urls": TURN["TURN_URLS"], "username": "u", "credential": "c"}]
    (tcp_first,) = ice_servers(servers, prefer_transport="tcp")
    assert tcp_first.urls[0].startswith("turns:")
    (as_given,) = ice_servers(servers)
    assert as_given.urls == TURN["TURN_URLS"]


@pytest.mark.django_db
@override_settings(**TURN, ICE_TRANSPORT_POLICY="relay")
def test_ice_servers_endpoint_gives_the_callers_own_credentials(
    make_user: Any, bearer_client: Any
) -> None:
    user = make_user("participant")
    response = bearer_client(user).get("/api/morpheus/ice_servers")
    assert response.status_code == 200
    body = response.json()
    assert body["ice_transport_policy"] == "relay"
    (turn,) = body["ice_servers"]
    expires, _, user_id = turn["username"].partition(":")
    assert user_id == str(user.pk)
    assert int(expires) == body["expires_at"]
    assert (
        base64.b64decode(turn["credential"])
        == hmac.new(b"s3cret", turn["username"].encode(), hashlib.sha1).digest()
    )
    assert "s3cret" not in response.content.decode()


@pytest.mark.django_db
@override_settings(**TURN, ICE_TRANSPORT_POLICY="relay")
def test_ice_restart_restarts_the_callers_own_stream_on_its_worker_with_fresh_credentials(
    make_user: Any,
    make_session: Any,
    online_worker: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from apps.core.errors import NotFound
    from apps.streaming import services
    from apps.streaming.tests.messages import worker_messages

    worker = online_worker("w")
    owner, other = make_user("participant"), make_user("participant")
    session = make_session(owner)
    with django_capture_on_commit_callbacks(execute=True):
        stream, _ = services.stream_start(user=owner, session_id=session.id)
    (start,) = [m for m in worker_messages(worker) if m["type"] == "stream_start"]
    assert start["ice_transport_policy"] == "relay"
    assert start["ice_servers"][0]["username"].endswith(f":{owner.pk}")  # the user's own

    with django_capture_on_commit_callbacks(execute=True):
        assert services.stream_ice_restart(
            user_id=owner.pk, session_id=session.id, stream_id=str(stream.id)
        )
    (again,) = worker_messages(worker)
    assert again["type"] == "stream_start"
    assert again["stream_id"] == str(stream.id)  # the same stream, on the same worker
    assert again["participant_id"] == start["participant_id"]
    assert again["ice_servers"][0]["username"].endswith(f":{owner.pk}")
    stream.refresh_from_db()
    assert stream.placements == 1
    assert stream.offer is None  # the worker's new offer replaces it

    # Retries while the network is down: one restart per interval, the rest dropped.
    with django_capture_on_commit_callbacks(execute=True):
        assert not services.stream_ice_restart(
            user_id=owner.pk, session_id=session.id, stream_id=str(stream.id)
        )
    assert worker_messages(worker) == []
    # Nobody restarts someone else's stream (nor learns it exists).
    with pytest.raises(NotFound):
        services.stream_ice_restart(
            user_id=other.pk, session_id=session.id, stream_id=str(stream.id)
        )
