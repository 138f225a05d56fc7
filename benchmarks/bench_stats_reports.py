"""Stats reports one platform process sustains, and the SQL queries each one costs.

A worker sends one stats report per stream per second. This feeds reports for 4 streams
through the real worker control socket consumer (``/ws/morpheus/worker/``, in this process,
Channels' test communicator, real PostgreSQL and Redis) as fast as the consumer takes them,
and counts every SQL statement the platform runs for them (all threads).

The same script ran on the code before and after issue 13 (the forecast moved to the worker;
stats recording lost its re-read of the last 30 reports and its per-insert pruning):

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<fresh db> REDIS_URL=redis://... \\
        PYTHONPATH=. .venv/bin/python benchmarks/bench_stats_reports.py --reports 2000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._hermes_bench import platform_env

STREAMS = 4


def _count_queries() -> itertools.count[int]:
    """Count every statement any thread's connection executes."""
    from django.db.backends import utils

    counter = itertools.count()
    for name in ("execute", "executemany"):
        original = getattr(utils.CursorWrapper, name)

        def wrapped(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            sql = str(args[0]) if args else ""
            if "SAVEPOINT" not in sql:
                next(counter)
            return _original(self, *args, **kwargs)

        setattr(utils.CursorWrapper, name, wrapped)
    return counter


def _report(i: int, t0: float) -> dict[str, Any]:
    """A typed report (also accepted by the old, untyped platform): 1080p, falling REMB
    now and then, so the old platform's forecast has real work."""
    return {
        "t": t0 + i * 1000.0,
        "rung": "1080p",
        "fps": 89.0,
        "target_fps": 90.0,
        "frames_sent": 90 * (i + 1),
        "bitrate_bps": 24_000_000,
        "target_bitrate_bps": 25_000_000,
        "remb_bps": 60_000_000 - (i % 20) * 1_500_000,
        "loss": 0.0,
        "rtt_ms": 20.0 + (i % 20),
        "encoder": "libx264",
        "stage_ms": {"render": {"p50": 4.0, "p95": 5.0, "p99": 6.0}},
        "latency_ms": {"p50": 20.0, "p95": 25.0, "p99": 30.0},
    }


async def registered_worker(*, versions: list[int], max_streams: int) -> Any:
    """A fresh worker connected to the real worker socket consumer and registered (the
    database's earlier workers and streams removed first: they would be reaped now and their
    streams placed on this run's worker)."""
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.streaming import services
    from apps.streaming.models import Stream, StreamingWorker
    from vrplatform.asgi import application

    db = database_sync_to_async
    await db(lambda: (Stream.objects.all().delete(), StreamingWorker.objects.all().delete()))()
    _, token = await db(services.worker_create)(name=f"bench-{time.time_ns()}")
    comm = WebsocketCommunicator(
        application, "/ws/morpheus/worker/", subprotocols=["vrplatform.v1", f"bearer.{token}"]
    )
    assert (await comm.connect(timeout=10))[0]
    register = {"type": "register", "worker_id": "b", "versions": versions}
    await comm.send_to(
        text_data=json.dumps(register | {"capabilities": {"max_streams": max_streams}})
    )
    assert json.loads(await comm.receive_from(timeout=10))["type"] == "registered"
    return comm


async def _run(reports: int) -> dict[str, float]:
    from channels.db import database_sync_to_async

    from apps.accounts.services import user_create
    from apps.sessions import services as sessions
    from apps.streaming import consumers, services

    # The socket's flood limit (400 messages/s) would cap what we measure: lift it.
    consumers.RATE_PER_S = 1e9  # type: ignore[attr-defined]
    db = database_sync_to_async
    comm = await registered_worker(versions=[2], max_streams=8)
    owner = await db(user_create)(
        username=f"bench{time.time_ns()}", password="x" * 16, roles=["participant"]
    )
    session = await db(sessions.session_create)(owner=owner, name="bench")
    stream_ids = []
    for _ in range(STREAMS):
        user = await db(user_create)(
            username=f"bench{time.time_ns()}", password="x" * 16, roles=["participant"]
        )
        await db(sessions.participant_join)(session_id=session.id, user=user)
        stream, _ = await db(services.stream_start)(user=user, session_id=session.id)
        stream_ids.append(str(stream.id))
    for _ in range(STREAMS):  # the stream_start commands
        assert json.loads(await comm.receive_from(timeout=10))["type"] == "stream_start"
    t0 = time.time() * 1000.0
    counter = _count_queries()
    before = next(counter)
    started = time.perf_counter()
    for i in range(reports):
        message = {
            "type": "stats",
            "stream_id": stream_ids[i % STREAMS],
            "stats": _report(i // STREAMS, t0),
        }
        await comm.send_to(text_data=json.dumps(message))
    # The consumer handles messages in order: an error reply to a bad one means all before
    # it are done.
    await comm.send_to(text_data="{")
    while json.loads(await comm.receive_from(timeout=600)).get("code") != "bad_json":
        pass
    elapsed = time.perf_counter() - started
    queries = next(counter) - before - 1
    await comm.disconnect()
    return {"reports_per_s": reports / elapsed, "queries_per_report": queries / reports}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with platform_env():
        results = [asyncio.run(_run(args.reports)) for _ in range(args.runs)]
    rates = [r["reports_per_s"] for r in results]
    queries = [r["queries_per_report"] for r in results]
    print(
        json.dumps(
            {
                "reports": args.reports,
                "runs": args.runs,
                "reports_per_s_median": round(statistics.median(rates), 1),
                "reports_per_s": [round(r, 1) for r in rates],
                "queries_per_report_median": round(statistics.median(queries), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
