"""``python -m workers.simulator --plan plan.json --url http://127.0.0.1:8000 [--url ...]``

Runs every worker of the plan as a simulated worker in this process, then each user of the
plan asks for one stream (``render_start``) at ``--rate`` per second, holds ``--seconds`` of
steady stats reports and (``--kill``) crashes the busiest worker. Prints one JSON line per
phase boundary (``{"phase": ..., "t": <unix time>, ...}``) as it happens, the last one
``{"phase": "done", "result": {...}}``.

``plan.json``: ``{"workers": [{"name", "token"}], "users": [{"token", "session_id"}]}``:
worker tokens (``manage.py create_worker``) and users' access tokens, each user a current
participant of the session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from workers.simulator.fleet import Fleet, FleetOptions, Placer, UserSpec, WorkerSpec, run_scenario


def mark(phase: str, **figures: Any) -> None:
    print(json.dumps({"phase": phase, "t": time.time(), **figures}), flush=True)  # CLI output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.simulator", description=__doc__)
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--url", action="append", required=True, help="a web process (repeat)")
    parser.add_argument("--rate", type=float, default=50.0, help="render_starts per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="steady stats phase")
    parser.add_argument("--max-streams", type=int, default=8)
    parser.add_argument("--heartbeat-s", type=float, default=5.0)
    parser.add_argument("--connect-per-s", type=float, default=200.0)
    parser.add_argument(
        "--viewers", type=int, default=0, help="users who hold their session socket and answer"
    )
    parser.add_argument("--kill", action="store_true", help="crash the busiest worker at the end")
    parser.add_argument("--failover-wait-s", type=float, default=60.0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    plan = json.loads(args.plan.read_text())
    urls = [u.rstrip("/") for u in args.url]
    options = FleetOptions(
        platform_urls=urls,
        max_streams=args.max_streams,
        heartbeat_s=args.heartbeat_s,
        connect_per_s=args.connect_per_s,
    )

    async def scenario() -> dict[str, Any]:
        fleet = Fleet([WorkerSpec(**w) for w in plan["workers"]], options)
        users = [UserSpec(**u) for u in plan["users"]]
        placer = Placer(urls, users, fleet, args.rate, viewers=args.viewers)
        return await run_scenario(
            fleet,
            placer,
            seconds=args.seconds,
            kill=args.kill,
            failover_wait_s=args.failover_wait_s,
            mark=mark,
        )

    mark("done", result=asyncio.run(scenario()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
