import uuid

import pytest

from apps.web.views import NETCHECK_MAX_BYTES

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "script"),
    [
        ("/", "client/js/login.js"),
        ("/login/", "client/js/login.js"),
        ("/lobby/", "client/js/lobby.js"),
        (f"/play/{uuid.uuid4()}/", "client/js/viewer.js"),
    ],
)
def test_pages_load_their_module(client, path, script):
    response = client.get(path)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'type="module" src="/static/{script}"' in body
    assert 'id="client-config"' in body


def test_play_page_carries_the_session_id_and_rejects_non_uuid(client):
    sid = uuid.uuid4()
    body = client.get(f"/play/{sid}/").content.decode()
    assert f'"sessionId": "{sid}"' in body
    assert client.get("/play/not-a-uuid/").status_code == 404


def test_client_modules_are_served_as_javascript(client):
    response = client.get("/static/client/js/math.js")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    assert b"export function rotationDelta" in b"".join(response.streaming_content)


def test_netcheck_needs_a_signed_in_user(api_client):
    response = api_client.get("/api/web/netcheck?bytes=10")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_netcheck_returns_exactly_the_asked_bytes_uncached(make_user, bearer_client):
    client = bearer_client(make_user())
    response = client.get("/api/web/netcheck?bytes=65536")
    assert response.status_code == 200
    assert len(response.content) == 65536
    assert response["Content-Type"] == "application/octet-stream"
    assert "no-store" in response["Cache-Control"]
    # Random, so a compressing proxy cannot inflate the measured throughput.
    assert len(set(response.content)) > 200
    assert client.get("/api/web/netcheck?bytes=0").content == b""


def test_netcheck_size_is_capped(make_user, bearer_client):
    client = bearer_client(make_user())
    response = client.get(f"/api/web/netcheck?bytes={NETCHECK_MAX_BYTES + 1}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert client.get("/api/web/netcheck?bytes=-1").status_code == 400
    assert len(client.get("/api/web/netcheck").content) > 0
