"""Worker accounts and the worker control socket."""

import json
import logging
from io import StringIO
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command

from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker, StreamStats, token_digest

PATH = "/ws/morpheus/worker/"


@pytest.fixture
async def close_thread_connections() -> Any:
    """The consumer's ORM calls run on asgiref's executor thread, which keeps its own database
    connection; close it so the test database can be dropped at the end of the run."""
    from django.db import connections

    yield
    await database_sync_to_async(connections.close_all)()


TIMEOUT = 3.0


@pytest.mark.django_db
def test_create_worker_prints_the_token_last_and_stores_only_its_hash() -> None:
    out = StringIO()
    call_command("create_worker", "--name", "gpu-1", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    worker = StreamingWorker.objects.get(name="gpu-1")
    assert worker.token_hash == token_digest(token)
    assert token not in json.dumps(list(StreamingWorker.objects.values()), default=str)
    assert services.worker_authenticate(token=token) == worker
    assert services.worker_authenticate(token=token + "x") is None


async def open_worker(token: str) -> WebsocketCommunicator:
    from vrplatform.asgi import application

    comm = WebsocketCommunicator(
        application, PATH, subprotocols=["vrplatform.v1", f"bearer.{token}"]
    )
    connected, subprotocol = await comm.connect(timeout=TIMEOUT)
    assert connected
    assert subprotocol == "vrplatform.v1"
    return comm


async def receive_json(comm: WebsocketCommunicator) -> dict[str, Any]:
    message = await comm.receive_output(timeout=TIMEOUT)
    assert message["type"] == "websocket.send", message
    return dict(json.loads(message["text"]))


@pytest.mark.django_db(transaction=True)
async def test_bad_worker_token_is_closed_with_4401(close_thread_connections: Any) -> None:
    await database_sync_to_async(services.worker_create)(name="w")
    comm = await open_worker("wk_not-a-real-token")
    message = await comm.receive_output(timeout=TIMEOUT)
    assert message == {"type": "websocket.close", "code": 4401}
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_worker_without_a_common_protocol_version_is_refused(
    close_thread_connections: Any,
) -> None:
    worker, token = await database_sync_to_async(services.worker_create)(name="old")
    comm = await open_worker(token)
    # A version-1 worker (no "versions"): untyped stats this platform no longer reads.
    await comm.send_to(
        text_data=json.dumps({"type": "register", "worker_id": "old", "capabilities": {}})
    )
    assert (await receive_json(comm))["code"] == "unsupported_version"
    message = await comm.receive_output(timeout=TIMEOUT)
    assert message == {"type": "websocket.close", "code": 4426}
    worker = await StreamingWorker.objects.aget(pk=worker.pk)
    assert worker.status != StreamingWorker.Status.ONLINE
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_worker_registers_heartbeats_and_bad_messages_do_not_crash(
    caplog: pytest.LogCaptureFixture, close_thread_connections: Any
) -> None:
    from apps.accounts.services import roles_sync

    await database_sync_to_async(roles_sync)()
    worker, token = await database_sync_to_async(services.worker_create)(name="w1")
    comm = await open_worker(token)
    # Before register, nothing else is accepted.
    await comm.send_to(text_data=json.dumps({"type": "heartbeat", "worker_id": "w1"}))
    assert (await receive_json(comm))["code"] == "not_registered"
    caps = {"max_streams": 3, "encoder": "libx264", "encoders": ["libx264"], "renderer": "x"}
    await comm.send_to(
        text_data=json.dumps(
            {"type": "register", "worker_id": "w1", "capabilities": caps, "versions": [1, 2]}
        )
    )
    assert await receive_json(comm) == {"type": "registered", "worker": "w1", "version": 2}
    worker = await StreamingWorker.objects.aget(pk=worker.pk)
    assert worker.status == StreamingWorker.Status.ONLINE
    assert worker.max_streams == 3
    assert worker.capabilities["encoder"] == "libx264"
    # Malformed, oversized and schema-invalid messages get an error; the socket stays up.
    await comm.send_to(text_data="{not json")
    assert (await receive_json(comm))["code"] == "bad_json"
    await comm.send_to(text_data="x" * (300 * 1024))
    assert (await receive_json(comm))["code"] == "too_large"
    await comm.send_to(text_data=json.dumps({"type": "signal", "stream_id": "s"}))
    assert (await receive_json(comm))["code"] == "bad_value"
    await comm.send_to(
        text_data=json.dumps(
            {"type": "stream_start", "stream_id": "s", "session_id": "x", "scene_url": "u"}
        )
    )
    assert (await receive_json(comm))["code"] == "unexpected_type"
    # Stats for a stream this worker does not run: ignored and logged, nothing stored.
    with caplog.at_level(logging.WARNING, logger="apps.streaming.selectors"):
        await comm.send_to(
            text_data=json.dumps(
                {
                    "type": "stats",
                    "stream_id": "7b4c1c9e-0000-4000-8000-000000000000",
                    "stats": {"t": 1.0, "fps": 90, "rung": "720p"},
                }
            )
        )
        await comm.send_to(
            text_data=json.dumps({"type": "heartbeat", "worker_id": "w1", "load": 0.5})
        )
        assert await comm.receive_nothing(timeout=0.5)
    assert "does not run" in caplog.text
    assert await StreamStats.objects.acount() == 0
    worker = await StreamingWorker.objects.aget(pk=worker.pk)
    assert worker.load == 0.5
    await comm.disconnect()
    worker = await StreamingWorker.objects.aget(pk=worker.pk)
    assert worker.status == StreamingWorker.Status.OFFLINE
    assert await Stream.objects.acount() == 0


@pytest.mark.django_db
def test_admin_creates_a_worker_and_shows_its_token_once(make_user: Any) -> None:
    from django.test import Client

    admin = make_user("admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    response = client.post(
        "/admin/streaming/streamingworker/add/", {"name": "gpu-admin"}, follow=True
    )
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    token = next(m for m in shown if "Token for worker gpu-admin" in m).rsplit(" ", 1)[-1]
    worker = StreamingWorker.objects.get(name="gpu-admin")
    assert services.worker_authenticate(token=token) == worker
    page = client.get(f"/admin/streaming/streamingworker/{worker.pk}/change/")
    assert page.status_code == 200
    assert token not in page.content.decode()
