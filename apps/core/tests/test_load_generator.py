"""The load generator (``workers/headset/load.py``) against a real daphne: it must count
what really happened (joins, echoed heartbeats, poses peers saw) and name errors."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from apps.accounts.services import roles_sync, token_pair_issue
from apps.accounts.tests.factories import UserFactory
from apps.core.testing import Processes, database_url_for
from apps.sessions import services
from workers.headset.load import LoadOptions, percentile, run_load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.mark.django_db(transaction=True)
def test_load_generator_counts_joins_heartbeats_and_poses(tmp_path: Path) -> None:
    roles_sync()  # transaction=True flushed the role groups
    users: list[dict[str, Any]] = []
    for _ in range(2):
        owner = UserFactory(roles=["participant"])
        session = services.session_create(owner=owner, name="load")
        members = [owner, *(UserFactory(roles=["participant"]) for _ in range(3))]
        users += [
            {"session_id": str(session.id), "token": token_pair_issue(user=u).access}
            for u in members
        ]
    users.append({"session_id": users[0]["session_id"], "token": "not-a-token"})
    processes = Processes(tmp_path)
    try:
        base = processes.daphne(
            "daphne", {"DATABASE_URL": database_url_for(connection.settings_dict["NAME"])}
        )
        connections.close_all()
        options = LoadOptions(
            urls=[base.replace("http://", "ws://")],
            seconds=2.0,
            ramp_per_s=50.0,
            heartbeat_s=0.5,
            pose_mix=((0.5, 20.0),),
        )
        report = asyncio.run(run_load(users, options))
    finally:
        processes.stop_all()
    assert report["users"] == 9
    assert report["connected"] == 9  # the bad token is accepted, then closed with 4401
    assert report["joined"] == 8
    assert report["closed_by_server"] == {"4401": 1}
    assert report["heartbeats_sent"] >= 8
    assert report["heartbeat_loss"] == 0.0
    assert 0 < report["heartbeat_rtt_ms_p50"] <= report["heartbeat_rtt_ms_p99"] < 2000
    assert report["pose_senders"] >= 2
    assert report["pose_seqs_seen_by_peers"] > 0
    assert report["pose_latency_ms_p50"] is not None
    assert report["errors"] == {}


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    # Interpolated (the one shared definition): 99 % of the way from 1 to 2. The old nearest
    # rank answered 2.0, the next sample up, whatever the spacing.
    assert percentile([1.0, 2.0], 0.99) == pytest.approx(1.99)
