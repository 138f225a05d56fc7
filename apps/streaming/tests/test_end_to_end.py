"""End to end: a real daphne, real worker processes and the synthetic headset in-process.

The headset logs in, creates a session, opens the session socket, asks for a stream,
answers the worker's offer and decodes stamped frames. Then the worker is killed with
SIGKILL: the platform notices the silence, places the stream on the other worker, and the
headset gets a new ``morpheus:render_started`` and decodes frames from the new worker.
"""

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from apps.accounts.services import roles_sync
from apps.accounts.tests.factories import DEFAULT_PASSWORD
from apps.core.testing import Processes, database_url_for, wait_until
from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker
from workers.headset.client import HeadsetOptions, SyntheticHeadset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def _platform(processes: Processes) -> str:
    return processes.daphne(
        "daphne",
        {
            "DJANGO_SETTINGS_MODULE": "apps.streaming.tests.e2e_settings",
            "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        },
    )


def _worker(processes: Processes, url: str, name: str) -> StreamingWorker:
    worker, token = services.worker_create(name=name)
    processes.start(
        name,
        [
            "-m",
            "workers.streaming",
            "--platform-url",
            url,
            "--token",
            token,
            "--name",
            name,
            "--max-streams",
            "2",
            "--heartbeat-s",
            "0.5",
            "--rung-sizes",
            "256x144",
            "--max-fps",
            "30",
            "--no-render-governor",
        ],
        {"NVENC_ENABLED": "0"},
    )

    def online() -> bool:
        worker.refresh_from_db()
        return worker.status == StreamingWorker.Status.ONLINE

    wait_until(online, f"worker {name} to register: {processes.log(name)}")
    return worker


@pytest.mark.django_db(transaction=True)
def test_headset_streams_and_the_stream_survives_a_killed_worker(
    processes: Processes, make_user: Any
) -> None:
    roles_sync()  # transaction=True flushed the role groups
    user = make_user("participant")
    url = _platform(processes)
    first = _worker(processes, url, "w1")
    connections.close_all()  # the headset runs in another thread's loop; no stale connection

    headset = SyntheticHeadset(
        HeadsetOptions(url, user.username, DEFAULT_PASSWORD, seconds=0, fps=60)
    )

    async def stream_then_move() -> dict[str, Any]:
        try:
            await headset.start()
            await headset.wait_frames(15, 30)
            stream = await Stream.objects.select_related("worker").aget(pk=headset.stream_id)
            assert stream.worker_id == first.id
            second = await sync_to_async(_worker)(processes, url, "w2")
            processes.procs["w1"].send_signal(signal.SIGKILL)
            await headset.wait_frames(10, 40, placement=2)
            stream = await Stream.objects.aget(pk=headset.stream_id)
            assert stream.worker_id == second.id
            metrics = await headset.metrics()
            # SIGTERM: the worker closes its peers and reports them; with no other live
            # worker the stream fails and the client is told.
            stopped = asyncio.ensure_future(headset.wait_event("morpheus:render_stopped", 20))
            processes.procs["w2"].send_signal(signal.SIGTERM)
            notice = await stopped
            exit_code = await asyncio.to_thread(processes.procs["w2"].wait, 15)
            after = await Stream.objects.aget(pk=headset.stream_id)
            return {
                "stream": stream,
                "metrics": metrics,
                "notice": notice,
                "exit_code": exit_code,
                "after": after,
            }
        finally:
            await headset.close()
            await sync_to_async(connections.close_all)()

    outcome = asyncio.run(stream_then_move())
    ids = [f.frame_id for f in headset.frames if f.placement == 1]
    assert len(ids) >= 15
    assert ids == sorted(ids)  # stamped ids read back in order from decoded pictures
    headset._resolve(headset.conn)  # type: ignore[arg-type]
    assert any(f.latency_ms is not None and 0 < f.latency_ms < 2000 for f in headset.frames)
    assert headset.render_started_count == 2
    started = [e for e in headset.events if e["event"] == "morpheus:render_started"]
    assert [e["data"]["placement"] for e in started] == [1, 2]
    assert outcome["stream"].placements == 2
    assert outcome["stream"].status in (Stream.Status.STARTING, Stream.Status.STREAMING)
    assert outcome["metrics"]["worker"] == "w2"
    first.refresh_from_db()
    assert first.status == StreamingWorker.Status.DEAD
    assert outcome["exit_code"] == 0
    assert outcome["notice"]["stream_id"] == headset.stream_id
    assert outcome["notice"]["reason"] == "worker_shutdown: no_capacity"
    assert outcome["after"].status == Stream.Status.FAILED
