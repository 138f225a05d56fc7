"""The stats path before and after issue 23: SQL statements, Redis commands and time per report.

One simulated worker with N streams sends S seconds of stats through the real worker control
socket consumer (``/ws/morpheus/worker/``, in this process, Channels' test communicator, real
PostgreSQL and Redis), as fast as the consumer takes them, in two ways on the same run:

- ``old``: one ``stats`` message per stream per second (a version-2 worker; the platform's
  single-report path: lock, update, insert per report);
- ``new``: one ``stats_batch`` per second with every stream's report (protocol version 3: one
  query and one Redis round trip per batch, a bulk flush every ``MORPHEUS_STATS_FLUSH_S``
  batches, and one at disconnect, which is counted).

Each run starts fresh streams whose first report (rung set, first frames) is sent before the
count; the modes alternate within each run so that machine load hits both alike. Every SQL
statement of every thread is counted (``bench_stats_reports._count_queries``), and every call
of the Django cache (Redis) the platform makes, each one round trip.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stats_path.py --streams 8 32 --seconds 20
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
from benchmarks.bench_stats_reports import _count_queries, _report, registered_worker

MODES = ("old", "new")


def _count_cache_calls() -> itertools.count[int]:
    """Count the Django cache's calls to Redis: each is one round trip (``set_many`` is one
    pipeline). The channel layer's own traffic is not the stats path's and is left out."""
    from django.core.cache.backends.redis import RedisCacheClient

    counter = itertools.count()
    for name in ("add", "get", "set", "touch", "delete", "get_many", "set_many", "incr"):
        original = getattr(RedisCacheClient, name)

        def wrapped(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            next(counter)
            return _original(self, *args, **kwargs)

        setattr(RedisCacheClient, name, wrapped)
    return counter


async def _run(
    mode: str, streams: int, seconds: int, counter: Any, cache_calls: Any
) -> dict[str, float]:
    from channels.db import database_sync_to_async

    from apps.accounts.services import user_create
    from apps.sessions import services as sessions
    from apps.streaming import services
    from workers.protocol import MAX_STATS_BATCH

    db = database_sync_to_async
    comm = await registered_worker(versions=[2, 3], max_streams=streams)
    ids = []
    for _ in range(streams):
        user = await db(user_create)(username=f"bench{time.time_ns()}", password=None)
        session = await db(sessions.session_create)(owner=user, name="bench")
        stream, _ = await db(services.stream_start)(user=user, session_id=session.id)
        ids.append(str(stream.id))
    for _ in range(streams):
        assert json.loads(await comm.receive_from(timeout=10))["type"] == "stream_start"

    t0 = time.time() * 1000.0

    def second(i: int) -> list[str]:
        reports = [{"stream_id": sid, "stats": _report(i, t0)} for sid in ids]
        if mode == "old":
            return [json.dumps({"type": "stats"} | r) for r in reports]
        return [
            json.dumps({"type": "stats_batch", "reports": reports[k : k + MAX_STATS_BATCH]})
            for k in range(0, len(reports), MAX_STATS_BATCH)
        ]

    async def settle() -> None:
        # The consumer handles messages in order: the error for a bad one means all before
        # it are done.
        await comm.send_to(text_data="{")
        while json.loads(await comm.receive_from(timeout=600)).get("code") != "bad_json":
            pass

    for text in second(0):  # each stream's first report: rung set, STARTING -> STREAMING
        await comm.send_to(text_data=text)
    await settle()
    queries, calls = next(counter), next(cache_calls)
    started = time.perf_counter()
    for i in range(1, seconds + 1):
        for text in second(i):
            await comm.send_to(text_data=text)
    await settle()
    await comm.disconnect()  # the new path's last flush
    elapsed = time.perf_counter() - started
    reports = streams * seconds
    return {
        "ms_per_report": elapsed * 1000.0 / reports,
        "sql_per_report": (next(counter) - queries - 1) / reports,
        "redis_round_trips_per_report": (next(cache_calls) - calls - 1) / reports,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, Any] = {"seconds": args.seconds, "runs": args.runs, "by_streams": {}}
    with platform_env():
        from apps.streaming import consumers

        # The socket's flood limit (400 messages/s) would cap the old path's rate: lift it.
        consumers.RATE_PER_S = 1e9  # type: ignore[attr-defined]
        counter, cache_calls = _count_queries(), _count_cache_calls()
        for streams in args.streams:
            runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
            for _ in range(args.runs):
                for mode in MODES:
                    runs[mode].append(
                        asyncio.run(_run(mode, streams, args.seconds, counter, cache_calls))
                    )
            row: dict[str, Any] = {}
            for key in ("ms_per_report", "sql_per_report", "redis_round_trips_per_report"):
                medians = {m: statistics.median(r[key] for r in runs[m]) for m in MODES}
                row[key] = {m: round(v, 3) for m, v in medians.items()}
                ratio = medians["old"] / medians["new"] if medians["new"] else None
                row[key]["old/new"] = None if ratio is None else round(ratio, 1)
            row["ms_per_report_runs"] = {
                m: [round(r["ms_per_report"], 2) for r in runs[m]] for m in MODES
            }
            out["by_streams"][streams] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
