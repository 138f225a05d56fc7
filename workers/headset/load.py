"""A WebSocket load generator: many authenticated session members in one asyncio process.

Each simulated user opens the session socket (bearer token in the subprotocol), joins, then
sends heartbeats (echoed by the server: a lost or late echo is loss or latency) and, for a
share of users, poses at their own rate. Pose sequence numbers let receivers count what
reached them; the server sends pose *snapshots* per tick, so a pose overtaken by a newer one
from the same sender before the tick is coalesced by design, not lost. Reported: connection
success, join success, heartbeat loss and round-trip p50/p99, pose propagation latency
p50/p99, pose coverage, errors by code.

    python -m workers.headset.load --users users.json --url ws://127.0.0.1:8000 \\
        --url ws://127.0.0.1:8001 --seconds 60 --ramp-per-s 500

``users.json``: ``[{"session_id": ..., "token": ...}, ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import websockets

from workers.protocol import BEARER_PREFIX, SUBPROTOCOL, percentile

logger = logging.getLogger("headset.load")


@dataclass(frozen=True)
class LoadOptions:
    urls: list[str]  # ws://host:port of each web process; users are spread round-robin
    seconds: float = 60.0  # steady state after the last user connected
    ramp_per_s: float = 500.0  # new connections per second
    heartbeat_s: float = 10.0
    # (share of users, poses per second): the rest only heartbeat (spectators, idle menus)
    pose_mix: tuple[tuple[float, float], ...] = ((0.05, 10.0), (0.15, 2.0))
    connect_timeout_s: float = 30.0


@dataclass
class Tally:
    connected: int = 0
    connect_failed: int = 0
    joined: int = 0
    heartbeats_sent: int = 0
    heartbeats_echoed: int = 0
    heartbeat_rtt_ms: list[float] = field(default_factory=list)
    poses_sent: int = 0
    pose_latency_ms: list[float] = field(default_factory=list)
    pose_seen: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # (sid, pid)
    pose_sent_seqs: dict[tuple[str, int], int] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    closed_early: Counter[str] = field(default_factory=Counter)


class User:
    def __init__(self, n: int, session_id: str, token: str, url: str, pose_hz: float) -> None:
        self.n = n
        self.session_id = session_id
        self.token = token
        self.url = f"{url}/ws/hermes/sessions/{session_id}/"
        self.pose_hz = pose_hz
        self.participant_id = 0
        self.pending: dict[float, float] = {}  # heartbeat t -> sent at
        self.established = asyncio.Event()

    async def run(self, options: LoadOptions, tally: Tally, stop: asyncio.Event) -> None:
        try:
            ws = await asyncio.wait_for(
                websockets.connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL, f"{BEARER_PREFIX}{self.token}"],  # type: ignore[list-item]
                    open_timeout=options.connect_timeout_s,
                    ping_interval=None,  # the platform's heartbeat is the liveness check
                    max_queue=None,
                ),
                options.connect_timeout_s,
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            tally.connect_failed += 1
            tally.errors[f"connect:{type(exc).__name__}"] += 1
            return
        tally.connected += 1
        reader = asyncio.create_task(self.read(ws, tally))
        try:
            await ws.send(json.dumps({"event": "hermes:session_join", "data": {}}))
            senders = [asyncio.create_task(self.heartbeats(ws, options, tally, stop))]
            await self.joined_or_closed(reader)
            if self.participant_id and self.pose_hz > 0:
                senders.append(asyncio.create_task(self.poses(ws, tally, stop)))
            await stop.wait()
            for task in senders:
                task.cancel()
            await asyncio.sleep(min(2.0, options.heartbeat_s))  # let the last echoes arrive
        except websockets.ConnectionClosed:
            pass  # the reader records how it closed
        finally:
            await ws.close()
            await asyncio.wait({reader}, timeout=5)
            reader.cancel()

    async def joined_or_closed(self, reader: asyncio.Task[None]) -> None:
        joined = asyncio.create_task(self.established.wait())
        await asyncio.wait({joined, reader}, return_when=asyncio.FIRST_COMPLETED)
        joined.cancel()

    async def heartbeats(
        self, ws: Any, options: LoadOptions, tally: Tally, stop: asyncio.Event
    ) -> None:
        await asyncio.sleep(random.uniform(0, options.heartbeat_s))  # noqa: S311 (spread)
        while not stop.is_set():
            t = time.time() * 1000.0 + self.n * 1e-6  # unique per user
            self.pending[t] = time.monotonic()
            tally.heartbeats_sent += 1
            await ws.send(json.dumps({"event": "athena:heartbeat", "data": {"t": t}}))
            await asyncio.sleep(options.heartbeat_s)

    async def poses(self, ws: Any, tally: Tally, stop: asyncio.Event) -> None:
        seq = 0
        period = 1.0 / self.pose_hz
        key = (self.session_id, self.participant_id)
        while not stop.is_set():
            seq += 1
            pose: dict[str, Any] = {"p": [0.0, 1.6, seq * 1e-3], "q": [0.0, 0.0, 0.0, 1.0]}
            pose.update({"t": time.time() * 1000.0, "seq": seq})
            await ws.send(json.dumps({"event": "hermes:pose", "data": pose}))
            tally.poses_sent += 1
            tally.pose_sent_seqs[key] = seq
            await asyncio.sleep(period)

    async def read(self, ws: Any, tally: Tally) -> None:
        try:
            async for raw in ws:
                self.on_message(json.loads(raw), tally)
        except websockets.ConnectionClosed as exc:
            tally.closed_early[str(exc.rcvd.code if exc.rcvd else "none")] += 1

    def on_message(self, message: dict[str, Any], tally: Tally) -> None:
        event, data = message.get("event"), message.get("data") or {}
        if event == "athena:heartbeat":
            sent = self.pending.pop(float(data.get("t") or 0.0), None)
            if sent is not None:
                tally.heartbeats_echoed += 1
                tally.heartbeat_rtt_ms.append((time.monotonic() - sent) * 1000.0)
        elif event == "hermes:poses":
            now = time.time() * 1000.0
            for pid, pose in (data.get("poses") or {}).items():
                if int(pid) == self.participant_id:
                    continue
                key = (self.session_id, int(pid))
                seen = tally.pose_seen.setdefault(key, set())
                if pose["seq"] not in seen:
                    seen.add(pose["seq"])
                    tally.pose_latency_ms.append(now - float(pose["t"]))
        elif event == "hermes:session_established":
            self.participant_id = int(data["participant_id"])
            self.established.set()
            tally.joined += 1
        elif event == "error":
            tally.errors[str(data.get("code"))] += 1


def _pose_rate(n: int, mix: tuple[tuple[float, float], ...]) -> float:
    position = (n * 0.6180339887) % 1.0  # deterministic spread of the mix over users
    edge = 0.0
    for share, hz in mix:
        edge += share
        if position < edge:
            return hz
    return 0.0


async def run_load(users: list[dict[str, str]], options: LoadOptions) -> dict[str, Any]:
    tally = Tally()
    stop = asyncio.Event()
    people = [
        User(n, u["session_id"], u["token"], options.urls[n % len(options.urls)],
             _pose_rate(n, options.pose_mix))
        for n, u in enumerate(users)
    ]  # fmt: skip
    started = time.monotonic()
    tasks = []
    for n, person in enumerate(people):
        tasks.append(asyncio.create_task(person.run(options, tally, stop)))
        lag = n / options.ramp_per_s - (time.monotonic() - started)
        if lag > 0:
            await asyncio.sleep(lag)
    ramp_s = time.monotonic() - started
    await asyncio.sleep(options.seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return summary(tally, len(users), ramp_s, options)


def summary(tally: Tally, users: int, ramp_s: float, options: LoadOptions) -> dict[str, Any]:
    # Receivers per sender: the other members of its session that joined.
    sent = sum(tally.pose_sent_seqs.values())
    seen = sum(len(s) for s in tally.pose_seen.values())
    return {
        "users": users,
        "ramp_s": round(ramp_s, 1),
        "steady_s": options.seconds,
        "connected": tally.connected,
        "connect_failed": tally.connect_failed,
        "joined": tally.joined,
        "heartbeats_sent": tally.heartbeats_sent,
        "heartbeats_echoed": tally.heartbeats_echoed,
        "heartbeat_loss": round(1 - tally.heartbeats_echoed / max(1, tally.heartbeats_sent), 5),
        "heartbeat_rtt_ms_p50": percentile(tally.heartbeat_rtt_ms, 0.5),
        "heartbeat_rtt_ms_p99": percentile(tally.heartbeat_rtt_ms, 0.99),
        "poses_sent": tally.poses_sent,
        "pose_seqs_seen_by_peers": seen,
        "pose_senders": len(tally.pose_sent_seqs),
        "pose_sent_seqs": sent,
        "pose_latency_ms_p50": percentile(tally.pose_latency_ms, 0.5),
        "pose_latency_ms_p99": percentile(tally.pose_latency_ms, 0.99),
        "errors": dict(tally.errors),
        "closed_by_server": dict(tally.closed_early),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", required=True, help="JSON file: [{session_id, token}]")
    parser.add_argument("--url", action="append", required=True, help="ws://host:port")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp-per-s", type=float, default=500.0)
    parser.add_argument("--heartbeat-s", type=float, default=10.0)
    parser.add_argument("--no-poses", action="store_true", help="heartbeats and joins only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with open(args.users) as fh:
        users = json.load(fh)
    options = LoadOptions(args.url, args.seconds, args.ramp_per_s, args.heartbeat_s)
    if args.no_poses:
        options = LoadOptions(args.url, args.seconds, args.ramp_per_s, args.heartbeat_s, ())
    print(json.dumps(asyncio.run(run_load(users, options)), indent=2))  # CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main())
