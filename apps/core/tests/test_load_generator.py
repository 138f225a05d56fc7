"""The load generator (``workers/headset/load.py``) against a real daphne: it must count
what really happened (joins, echoed heartbeats, poses peers saw) and name errors; and
``make test-load`` tiny (``benchmarks/bench_load.py``): two daphne processes, one killed under
its sockets, every user back through a token refresh."""

import asyncio
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections

from apps.accounts.services import roles_sync, token_pair_issue
from apps.accounts.tests.factories import UserFactory
from apps.core.testing import ROOT, Processes, database_url_for, load_script
from apps.sessions import services
from workers.headset.load import (
    LoadOptions,
    backoff_s,
    closing_line,
    percentile,
    run_load,
    token_expires_at,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.mark.django_db(transaction=True)
def test_load_generator_counts_joins_heartbeats_and_poses(tmp_path: Path) -> None:
    roles_sync()  # transaction=True flushed the role groups
    users: list[dict[str, Any]] = []
    for _ in range(2):
        owner = UserFactory(roles=["participant"])
        session = services.session_create(owner=owner, name="load")
        members = [owner, *(UserFactory(roles=["participant"]) for _ in range(3))]
        for user in members:
            pair = token_pair_issue(user=user)
            entry = {"session_id": str(session.id), "access": pair.access}
            users.append({**entry, "refresh": pair.refresh})
    users.append({"session_id": users[0]["session_id"], "access": "not-a-token", "refresh": "x"})
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
            spectator_every=0,
        )
        report = asyncio.run(run_load(users, options))
    finally:
        processes.stop_all()
    assert report["users"] == 9
    assert report["connected"] == 9  # the bad token is accepted, then closed with 4401
    assert report["joined"] == 8
    assert report["closed_by_server"] == {"4401": 1}
    # Refused, it tries its refresh token as the web client does; that is refused too.
    assert report["gave_up"] == {"refresh": 1}
    assert report["errors"] == {"wisdom_refresh:401": 1}
    assert report["connected_at_end"] == 8
    assert report["heartbeats_sent"] >= 8
    assert report["heartbeats_echoed"] == report["heartbeats_sent"]
    assert report["heartbeats_lost"] == 0
    assert 0 < report["heartbeat_rtt_ms_p50"] <= report["heartbeat_rtt_ms_p99"] < 2000
    assert report["pose_senders"] >= 2
    assert report["pose_seqs_seen_by_peers"] > 0
    assert report["pose_latency_ms_p50"] is not None
    assert report["dropped"] == 0


@pytest.mark.django_db(transaction=True)
def test_load_bench_storm_every_user_back_through_refresh() -> None:
    """20 users (2 sign in with a password) on 2 daphne processes; the first is killed and
    restarted under its 10 sockets; its users refresh their tokens (single use, rotated: a
    replay would revoke the sign-in) and must all be back, heartbeats none lost."""
    roles_sync()
    bench = load_script("bench_load", ROOT / "benchmarks" / "bench_load.py")
    env = {**os.environ, "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
           "DB_CONN_MAX_AGE": "60"}  # fmt: skip
    report = bench.run_bench(
        env, users=20, seconds=1.0, ramp_per_s=50.0, processes=2, signins=2,
        heartbeat_s=0.5, storm_after_s=1.5, storm_wait_s=25.0,
    )  # fmt: skip
    connections.close_all()
    line = closing_line(report["ws"])
    found = re.fullmatch(
        r"load: connected (\d+)/(\d+), heartbeat p50/p99 (\d+)/(\d+) ms, lost (\d+), "
        r"reconnect storm ([\d.]+) s",
        line,
    )
    assert found is not None, line
    connected, users, p50, p99, lost, storm = found.groups()
    assert (int(connected), int(users), int(lost)) == (20, 20, 0), report
    assert int(p50) <= int(p99) < 5000
    assert 0 < float(storm) < 30, report
    ws = report["ws"]
    assert ws["signins"] == 2
    assert (ws["dropped"], ws["rejoined"]) == (10, 10)
    assert ws["refreshes"] >= 10  # every dropped user rotated its pair, none replayed
    assert ws["gave_up"] == {}
    assert [p["sockets"] for p in report["daphne"]] == [10, 10]


@pytest.mark.django_db
def test_token_expiry_read_as_api_js_schedules_its_refresh() -> None:
    roles_sync()
    pair = token_pair_issue(user=UserFactory(roles=["participant"]))
    assert token_expires_at(pair.access) == pytest.approx(time.time() + pair.expires_in, abs=5)
    assert token_expires_at("not-a-token") == 0.0


def test_backoff_is_the_web_clients() -> None:
    """netstats.js backoffDelay: 500 ms doubling, capped at 15 s, +-20 %."""
    for attempt, nominal in ((0, 0.5), (1, 1.0), (3, 4.0), (10, 15.0)):
        delay = backoff_s(attempt)
        assert nominal * 0.8 <= delay <= nominal * 1.2


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    # Interpolated (the one shared definition): 99 % of the way from 1 to 2. The old nearest
    # rank answered 2.0, the next sample up, whatever the spacing.
    assert percentile([1.0, 2.0], 0.99) == pytest.approx(1.99)
