"""The worker simulator against the real platform: a daphne process on the test database,
three simulated workers, six users asking for a stream each over the REST API and answering
its offer on their session socket.

Fails when the worker protocol breaks on either side: the workers must register, get their
streams placed, relay offers and answers, have every stream's per-second report recorded
(``Stream.last_stats``) and, when one worker is killed, see its streams placed on the others.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from apps.accounts.services import roles_sync, token_pair_issue
from apps.core.testing import Processes, database_url_for, wait_until
from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker, StreamStats
from workers.simulator.fleet import Fleet, FleetOptions, Placer, UserSpec, WorkerSpec, run_scenario

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

WORKERS, STREAMS_EACH = 3, 2


@pytest.mark.django_db(transaction=True)
def test_simulated_workers_stream_report_and_fail_over(
    tmp_path: Path, make_user: Any, make_session: Any, request: pytest.FixtureRequest
) -> None:
    processes = Processes(tmp_path)
    request.addfinalizer(processes.stop_all)
    roles_sync()  # transaction=True flushed the role groups
    url = processes.daphne(
        "daphne",
        {
            # A worker silent for 3 s is dead: the kill below does not wait 15 s.
            "DJANGO_SETTINGS_MODULE": "apps.streaming.tests.e2e_settings",
            "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        },
    )
    workers = []
    for i in range(WORKERS):
        worker, token = services.worker_create(name=f"sim{i}")
        workers.append(WorkerSpec(worker.name, token))
    users = []
    for _ in range(WORKERS * STREAMS_EACH):
        user = make_user("participant")
        session = make_session(user)  # its owner participates: one stream per session
        users.append(UserSpec(token_pair_issue(user=user).access, str(session.id)))
    connections.close_all()  # the scenario's own loop runs while this thread waits

    # One slot spare on each worker, so the killed worker's streams have somewhere to go.
    options = FleetOptions([url], max_streams=STREAMS_EACH + 1, heartbeat_s=0.5)
    phases: list[str] = []

    async def scenario() -> dict[str, Any]:
        fleet = Fleet(workers, options)
        placer = Placer([url], users, fleet, rate_per_s=20.0, threads=4, viewers=len(users))
        return await run_scenario(
            fleet,
            placer,
            seconds=2.5,
            kill=True,
            failover_wait_s=20.0,
            mark=lambda phase, **_: phases.append(phase),
        )

    result = asyncio.run(scenario())

    assert result["registered"] == WORKERS
    placement = result["placement"]
    assert placement["placed"] == WORKERS * STREAMS_EACH, placement
    assert placement["status"] == {"201": WORKERS * STREAMS_EACH}
    # Every offer reached its user's session socket, and every answer its worker.
    assert placement["offered"] == WORKERS * STREAMS_EACH, placement
    assert result["steady"]["answers"] == WORKERS * STREAMS_EACH
    assert result["steady"]["reports_sent"] >= WORKERS * STREAMS_EACH * 2

    def flushed() -> bool:
        # Batched reports (stats_batch) reach the rows at the platform's flush: every
        # MORPHEUS_STATS_FLUSH_S and when a worker disconnects, as the fleet just did.
        return StreamStats.objects.count() >= WORKERS * STREAMS_EACH * 2

    wait_until(flushed, "the streams' reports in PostgreSQL", 15)
    streams = list(Stream.objects.select_related("worker"))
    assert len(streams) == WORKERS * STREAMS_EACH
    for stream in streams:
        # The simulated report, as the platform stored it.
        assert stream.last_stats["encoder"] == "libx264"
        assert stream.last_stats["frames_sent"] > 0
        assert stream.stats_summary["reports"] >= 1
    failover = result["failover"]
    # Two streams a worker (least loaded first), then the killed one's moved to the others.
    assert {s.worker.name for s in streams} == {w.name for w in workers} - {failover["worker"]}
    assert failover["streams"] == STREAMS_EACH
    assert failover["moved"] == STREAMS_EACH, failover
    killed = StreamingWorker.objects.get(name=failover["worker"])
    assert killed.status == StreamingWorker.Status.DEAD
    moved = Stream.objects.filter(pk__in=failover["stream_ids"])
    assert all(s.placements >= 2 and s.worker_id != killed.id for s in moved)
    assert phases == [
        "connect", "registered", "placed", "steady_start", "steady_end", "kill", "failover_end"
    ]  # fmt: skip
