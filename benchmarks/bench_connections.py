"""How many authenticated, heartbeating session sockets one daphne process holds.

Clients open ``/ws/hermes/sessions/<id>/`` with a platform JWT in the subprotocol (each one
authenticated against the database and added to its user's channel-layer group), then send
``athena:heartbeat`` once a second. The load grows in steps; at each step the heartbeat
round trip is measured for a few seconds. The run stops at the first step whose p99 RTT
exceeds 100 ms, when connections fail, or at the last step.

    .venv/bin/python benchmarks/bench_connections.py [--steps 500 1000 2000 3000 4000 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._hermes_bench import cpu_seconds, daphne, make_users, platform_env
from workers.protocol import percentiles

RTT_LIMIT_MS = 100.0


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Client:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.ws: Any = None
        self.rtts: list[float] = []
        self.measuring = False

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            subprotocols=["vrplatform.v1", f"bearer.{self.token}"],
            compression=None,
            open_timeout=60,
            ping_interval=None,  # the application heartbeat is the keepalive here
        )

    async def run(self, stop: asyncio.Event) -> None:
        async def beat() -> None:
            # Each client beats on its own fixed phase of the second, like independent
            # devices. Sleeping 1 s after each send instead drifts: every harness stall
            # lined the clients up, and from then on they beat in bursts of hundreds within
            # a few ms, which measured the burst, not the server.
            loop = asyncio.get_running_loop()
            due = loop.time() + random.random()
            while not stop.is_set():
                await asyncio.sleep(max(0.0, due - loop.time()))
                await self.ws.send(
                    json.dumps({"event": "athena:heartbeat", "data": {"t": time.monotonic()}})
                )
                due += 1.0
                if due < loop.time():  # fell a whole period behind: skip, keep the phase
                    due += (loop.time() - due) // 1.0 * 1.0 + 1.0

        task = asyncio.create_task(beat())
        try:
            async for text in self.ws:
                event = json.loads(text)
                if event["event"] == "athena:heartbeat" and self.measuring:
                    self.rtts.append((time.monotonic() - event["data"]["t"]) * 1000.0)
        except Exception:  # noqa: S110 (closed at the end of the run)
            pass
        finally:
            task.cancel()


async def load(url: str, tokens: list[str], steps: list[int], seconds: float, pid: int) -> None:
    clients: list[Client] = []
    stop = asyncio.Event()
    runners: list[asyncio.Task[None]] = []
    for target in steps:
        started = time.monotonic()
        pending = [Client(url, tokens[i % len(tokens)]) for i in range(len(clients), target)]
        failures: dict[str, int] = {}
        for batch in range(0, len(pending), 100):
            chunk = pending[batch : batch + 100]
            results = await asyncio.gather(*(c.open() for c in chunk), return_exceptions=True)
            for client, result in zip(chunk, results, strict=True):
                if isinstance(result, Exception):
                    reason = type(result).__name__
                    failures[reason] = failures.get(reason, 0) + 1
                else:
                    clients.append(client)
                    runners.append(asyncio.create_task(client.run(stop)))
        connect_s = time.monotonic() - started
        await asyncio.sleep(1.5)  # let the new clients' first beats settle
        for c in clients:
            c.rtts.clear()
            c.measuring = True
        cpu0, t0, own0 = cpu_seconds(pid), time.monotonic(), time.process_time()
        await asyncio.sleep(seconds)
        cpu = 100.0 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        harness = 100.0 * (time.process_time() - own0) / (time.monotonic() - t0)
        for c in clients:
            c.measuring = False
        rtts = [r for c in clients for r in c.rtts]
        alive = sum(1 for c in clients if c.ws.state.name == "OPEN")
        closed: dict[str, int] = {}
        for c in clients:
            if c.ws.state.name != "OPEN":
                why = f"{c.ws.close_code} {c.ws.close_reason}".strip()
                closed[why] = closed.get(why, 0) + 1
        row = {
            "connections": alive,
            "failed_connects": sum(failures.values()),
            "connect_s": round(connect_s, 1),
            "rtt_p50_ms": percentiles(rtts, digits=1).p50,
            "rtt_p99_ms": percentiles(rtts, digits=1).p99,
            "beats_per_s": round(len(rtts) / seconds),
            "server_cpu_pct": round(cpu),
            "harness_cpu_pct": round(harness),
            "load_avg_1m": round(os.getloadavg()[0], 1),
        }
        if failures:
            row["failures"] = failures
        if closed:
            row["closed"] = closed
        print(json.dumps(row), flush=True)
        if failures or row["rtt_p99_ms"] > RTT_LIMIT_MS or alive < target:
            break
    stop.set()
    await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
    await asyncio.gather(*runners, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 1000, 2000, 3000, 4000, 5000])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"file descriptor limit: {raise_fd_limit()}", flush=True)
    with platform_env() as env:
        from apps.sessions import services

        users = make_users(50, "conn")
        session = services.session_create(owner=users[0][0], name="connections")
        with daphne(env) as (port, pid):
            url = f"ws://127.0.0.1:{port}/ws/hermes/sessions/{session.id}/"
            asyncio.run(load(url, [t for _, t in users], args.steps, args.seconds, pid))


if __name__ == "__main__":
    main()
