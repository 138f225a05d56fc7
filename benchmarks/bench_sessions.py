"""Pose fan-out of the session WebSocket, against a websockets-only broadcast server.

For sessions of 2, 8, 32 and 128 participants, every participant sends poses at 90 Hz to one
daphne process (Redis channel layer and Redis pose hash, the production path) and receives one
``hermes:poses`` snapshot per tick with the others' changed poses. The same load then runs
against a minimal server written with ``websockets`` only (latest pose per client, the same
tick and snapshot format, no auth, validation or Redis): the Python ceiling on this machine.

Reports delivered pose updates/s, pose age at receipt (client clock at send → receipt, same
machine) p50/p99 and server CPU, and our throughput as a ratio of the baseline's.

    .venv/bin/python benchmarks/bench_sessions.py [--sizes 2 8 32 128] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets

from benchmarks._hermes_bench import (
    BASE_DIR,
    cpu_seconds,
    daphne,
    free_port,
    make_users,
    platform_env,
    wait_listening,
)
from workers.protocol import percentile

POSE_HZ = 90
TICK_HZ = 30
PROBES = 4  # clients that parse every snapshot for pose ages; the rest only count


# --- the baseline: a websockets-only broadcast server ----------------------------------------
async def baseline_server(port: int) -> None:
    from websockets.asyncio.server import serve

    clients: dict[Any, int] = {}
    latest: dict[int, str] = {}
    changed: set[int] = set()

    async def handler(ws: Any) -> None:
        cid = len(clients) + 1 + max(clients.values(), default=0)
        clients[ws] = cid
        try:
            async for text in ws:
                message = json.loads(text)
                if message.get("event") == "hermes:pose":
                    latest[cid] = json.dumps(message["data"], separators=(",", ":"))
                    changed.add(cid)
        finally:
            clients.pop(ws, None)

    async def ticker() -> None:
        tick = 0
        while True:
            await asyncio.sleep(1 / TICK_HZ)
            if not changed:
                continue
            tick += 1
            parts = [(c, f'"{c}":{latest[c]}') for c in list(changed)]
            changed.clear()
            head = f'{{"event":"hermes:poses","data":{{"tick":{tick},"poses":{{'
            for ws, cid in list(clients.items()):
                body = ",".join(text for other, text in parts if other != cid)
                if body:
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(head + body + "}}}")

    async with serve(handler, "127.0.0.1", port, compression=None, max_size=2**20):
        await ticker()


# --- the load ----------------------------------------------------------------------------------
@dataclass
class Stats:
    updates: int = 0
    ages: list[float] = field(default_factory=list)
    measuring: bool = False


async def client(
    url: str,
    subprotocols: list[str] | None,
    join: bool,
    probe: bool,
    stats: Stats,
    ready: asyncio.Event,
    stop: asyncio.Event,
    joined: list[int],
) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        url, subprotocols=subprotocols, compression=None, max_size=2**22, open_timeout=60
    ) as ws:
        if join:
            await ws.send(json.dumps({"event": "hermes:session_join", "data": {}}))
            while json.loads(await ws.recv())["event"] != "hermes:session_established":
                pass
        joined.append(1)
        await ready.wait()

        async def sender() -> None:
            seq = 0
            period = 1.0 / POSE_HZ
            loop = asyncio.get_running_loop()
            deadline = loop.time()
            while not stop.is_set():
                seq += 1
                now_ms = time.time() * 1000.0
                data = {"p": [0.1, 1.6, -0.2], "q": [0.0, 0.0, 0.0, 1.0], "t": now_ms, "seq": seq}
                await ws.send(json.dumps({"event": "hermes:pose", "data": data}))
                deadline += period
                delay = deadline - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    deadline = loop.time()

        task = asyncio.create_task(sender())
        try:
            while not stop.is_set():
                try:
                    text = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                if not stats.measuring or '"hermes:poses"' not in text[:40]:
                    continue
                if probe:
                    now_ms = time.time() * 1000.0
                    poses = json.loads(text)["data"]["poses"]
                    stats.updates += len(poses)
                    stats.ages.extend(now_ms - p["t"] for p in poses.values())
                else:
                    stats.updates += text.count('"seq"')
        finally:
            task.cancel()


async def run_load(
    urls: list[tuple[str, list[str] | None]], join: bool, seconds: float, server_pid: int
) -> dict[str, float]:
    stats = Stats()
    ready, stop = asyncio.Event(), asyncio.Event()
    joined: list[int] = []
    tasks = []
    for i, (url, protocols) in enumerate(urls):
        tasks.append(
            asyncio.create_task(
                client(url, protocols, join, i < PROBES, stats, ready, stop, joined)
            )
        )
        if i % 16 == 15:
            await asyncio.sleep(0.05)  # do not stampede the accept queue
    while len(joined) < len(urls):
        for task in tasks:
            if task.done() and task.exception():
                raise task.exception()  # type: ignore[misc]
        await asyncio.sleep(0.05)
    ready.set()
    await asyncio.sleep(1.0)  # warm-up
    cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
    stats.measuring = True
    await asyncio.sleep(seconds)
    stats.measuring = False
    cpu1, t1 = cpu_seconds(server_pid), time.monotonic()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = t1 - t0
    return {
        "updates_per_s": stats.updates / elapsed,
        "age_p50_ms": percentile(stats.ages, 0.5),
        "age_p99_ms": percentile(stats.ages, 0.99),
        "server_cpu_pct": 100.0 * (cpu1 - cpu0) / elapsed,
        "ceiling_per_s": len(urls) * (len(urls) - 1) * TICK_HZ,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        asyncio.run(baseline_server(args.baseline_server))
        return
    logging.basicConfig(level=logging.WARNING)

    results: list[dict[str, Any]] = []
    with platform_env() as env:
        from apps.sessions import services

        users = make_users(max(args.sizes), "bench")
        with daphne(env, {"SESSION_TICK_HZ": str(TICK_HZ)}) as (port, pid):
            for size in args.sizes:
                session = services.session_create(
                    owner=users[0][0], name=f"bench {size}", max_participants=size
                )
                url = f"ws://127.0.0.1:{port}/ws/hermes/sessions/{session.id}/"
                ours = asyncio.run(
                    run_load(
                        [(url, ["vrplatform.v1", f"bearer.{t}"]) for _, t in users[:size]],
                        True,
                        args.seconds,
                        pid,
                    )
                )
                services.session_end(session_id=session.id)
                results.append({"server": "hermes", "participants": size, **ours})
                print(json.dumps(results[-1]), flush=True)

        base_port = free_port()
        process = subprocess.Popen(
            [sys.executable, __file__, "--baseline-server", str(base_port)], cwd=BASE_DIR
        )
        try:
            wait_listening(base_port, process)
            for size in args.sizes:
                base = asyncio.run(
                    run_load(
                        [(f"ws://127.0.0.1:{base_port}/", None)] * size,
                        False,
                        args.seconds,
                        process.pid,
                    )
                )
                results.append({"server": "websockets", "participants": size, **base})
                print(json.dumps(results[-1]), flush=True)
        finally:
            process.terminate()
            process.wait(timeout=10)

    print()
    print(
        "participants  hermes upd/s  baseline upd/s  ratio  age p50/p99 ms (hermes)  "
        "age p50/p99 ms (baseline)  cpu% hermes/baseline"
    )
    for size in args.sizes:
        ours = next(r for r in results if r["server"] == "hermes" and r["participants"] == size)
        base = next(r for r in results if r["server"] == "websockets" and r["participants"] == size)
        ratio = ours["updates_per_s"] / base["updates_per_s"] if base["updates_per_s"] else 0.0
        print(
            f"{size:>12}  {ours['updates_per_s']:>12.0f}  {base['updates_per_s']:>14.0f}  "
            f"{ratio:>5.2f}  {ours['age_p50_ms']:>8.1f} / {ours['age_p99_ms']:<8.1f}        "
            f"{base['age_p50_ms']:>8.1f} / {base['age_p99_ms']:<8.1f}         "
            f"{ours['server_cpu_pct']:.0f} / {base['server_cpu_pct']:.0f}"
        )


if __name__ == "__main__":
    main()
