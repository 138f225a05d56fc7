"""Many simulated workers in one event loop, and users who place streams on them.

:class:`Fleet` runs one :class:`~workers.simulator.agent.SimulatedAgent` per worker token,
spread round-robin over the platform's web processes, and records when each ``stream_start``
reached which worker. :class:`Placer` is the users' side: each user asks for one stream with
``POST /api/morpheus/render_start`` (their own bearer token, as the web and headset clients
do) at a fixed rate, open loop (a slow platform does not slow the arrivals down), and a
stream counts as placed when its ``stream_start`` reaches a simulated worker.

:func:`run_scenario` strings the phases together (register, place, steady stats, kill a
worker) and announces each phase boundary through ``mark`` so that a benchmark can sample
the platform's counters there (``benchmarks/bench_sim_workers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
import websockets
from websockets.typing import Subprotocol

from workers.protocol import BEARER_PREFIX, SUBPROTOCOL, percentile
from workers.simulator.agent import SimulatedAgent
from workers.streaming.agent import AgentConfig

Mark = Callable[..., None]  # mark(phase, **figures)


@dataclass(frozen=True)
class WorkerSpec:
    name: str
    token: str


@dataclass(frozen=True)
class UserSpec:
    token: str  # an access token (Bearer)
    session_id: str


@dataclass
class FleetOptions:
    platform_urls: list[str]  # http://host:port of each web process
    max_streams: int = 8
    heartbeat_s: float = 5.0  # the real worker's default
    stats_interval_s: float = 1.0
    connect_per_s: float = 200.0  # new worker sockets per second while the fleet starts


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000.0, 1)


class Fleet:
    def __init__(self, workers: list[WorkerSpec], options: FleetOptions) -> None:
        self.options = options
        self.agents: list[SimulatedAgent] = []
        # stream id -> [(monotonic time, worker name)] of every stream_start it got
        self.placements: dict[str, list[tuple[float, str]]] = {}
        self._placed: dict[str, asyncio.Event] = {}
        self.any_placed = asyncio.Event()  # set by every stream_start; cleared by waiters
        for i, spec in enumerate(workers):
            urls = options.platform_urls
            config = AgentConfig(
                platform_url=urls[i % len(urls)],
                token=spec.token,
                name=spec.name,
                max_streams=options.max_streams,
                heartbeat_s=options.heartbeat_s,
                stats_interval_s=options.stats_interval_s,
                # Simulated streams have no participants' poses to forward: a rare tick.
                pose_tick_s=1.0,
                handle_signals=False,
                backoff_initial_s=1.0,
            )
            self.agents.append(SimulatedAgent(config, on_placed=self._on_placed))
        self._tasks: list[asyncio.Task[None]] = []

    def _on_placed(self, stream_id: str, agent: SimulatedAgent) -> None:
        self.placements.setdefault(stream_id, []).append((time.monotonic(), agent.config.name))
        self.placed_event(stream_id).set()
        self.any_placed.set()

    def placed_event(self, stream_id: str) -> asyncio.Event:
        """Set once a ``stream_start`` for the stream reached any simulated worker."""
        return self._placed.setdefault(stream_id, asyncio.Event())

    async def start(self, timeout_s: float = 120.0) -> int:
        """Connect every worker (paced); returns how many registered within the timeout."""
        for agent in self.agents:
            self._tasks.append(asyncio.create_task(agent.run()))
            await asyncio.sleep(1.0 / self.options.connect_per_s)
        waits = [asyncio.create_task(a.registered.wait()) for a in self.agents]
        await asyncio.wait(waits, timeout=timeout_s)
        for wait in waits:
            wait.cancel()
        return sum(a.registered.is_set() for a in self.agents)

    def reports_sent(self) -> int:
        return sum(p.reports for a in self.agents for p in a.peers.values())

    def answers(self) -> int:
        return sum(p.answer is not None for a in self.agents for p in a.peers.values())

    def kill(self, agent: SimulatedAgent) -> list[str]:
        """Crash one worker; returns the streams it ran."""
        streams = [s for s, peer in agent.peers.items() if peer.pc.connectionState != "closed"]
        agent.kill()
        return streams

    async def stop(self) -> None:
        """Every worker vanishes at once (``kill``): a graceful stop would have the platform
        move each of their streams once more (``worker_shutdown``), a storm of placements
        that is not what a run measures."""
        for agent in self.agents:
            agent.kill()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=15)
        for task in self._tasks:
            task.cancel()


@dataclass
class Placement:
    requested: float  # monotonic
    responded: float | None = None
    status: str = ""
    stream_id: str = ""
    placed: float | None = None
    offered: float | None = None  # the worker's offer reached the user's session socket


class Viewer:
    """A user's session socket as the web client holds it: joined, heartbeating, answering
    its stream's offer (``morpheus:render_started``) with ``morpheus:signal``. The answer is
    a placeholder SDP: the simulated worker keeps it and streams nothing."""

    HEARTBEAT_S = 10.0  # the web client's interval

    def __init__(self, platform_url: str, user: UserSpec) -> None:
        base = platform_url.replace("http", "ws", 1)
        self.url = f"{base}/ws/hermes/sessions/{user.session_id}/"
        self.token = user.token
        self.offers: dict[str, float] = {}  # stream id -> monotonic time its offer arrived
        self._changed = asyncio.Event()
        self._ws: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def open(self, timeout_s: float = 30.0) -> None:
        self._ws = await websockets.connect(
            self.url,
            subprotocols=[Subprotocol(SUBPROTOCOL), Subprotocol(f"{BEARER_PREFIX}{self.token}")],
            open_timeout=timeout_s,
        )
        joined = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._read(joined)),
            asyncio.create_task(self._heartbeats()),
        ]
        await self._send("hermes:session_join", {})
        async with asyncio.timeout(timeout_s):
            await joined.wait()

    async def _send(self, event: str, data: dict[str, Any]) -> None:
        await self._ws.send(json.dumps({"event": event, "data": data}))

    async def _read(self, joined: asyncio.Event) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self._ws:
                message = json.loads(raw)
                event, data = message.get("event"), message.get("data") or {}
                if event == "hermes:session_established":
                    joined.set()
                elif event == "morpheus:render_started" and data.get("offer"):
                    self.offers.setdefault(str(data["stream_id"]), time.monotonic())
                    await self._send(
                        "morpheus:signal",
                        {
                            "stream_id": data["stream_id"],
                            "answer": {"type": "answer", "sdp": "v=0\r\ns=simulated viewer\r\n"},
                        },
                    )
                    self._changed.set()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.HEARTBEAT_S)
            await self._send("athena:heartbeat", {"t": time.time() * 1000.0})

    async def offered(self, stream_id: str, timeout_s: float) -> float | None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while stream_id not in self.offers:
                    self._changed.clear()
                    await self._changed.wait()
        return self.offers.get(stream_id)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._ws is not None:
            await self._ws.close()


@dataclass
class Placer:
    """Users asking for streams over the real REST API (blocking ``requests`` in a thread
    pool: the platform, not the client library, should be what is measured)."""

    platform_urls: list[str]
    users: list[UserSpec]
    fleet: Fleet
    rate_per_s: float = 50.0
    threads: int = 64
    # The first ``viewers`` users hold their session socket and answer their stream's offer
    # (the others only ask for a stream: at thousands of users the sockets are the load
    # test's subject, workers/headset/load.py, not this one's).
    viewers: int = 0
    results: list[Placement] = field(default_factory=list)
    _viewers: list[Viewer] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    def _post(self, i: int, user: UserSpec) -> tuple[int, dict[str, Any]]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        url = self.platform_urls[i % len(self.platform_urls)] + "/api/morpheus/render_start"
        response = session.post(
            url,
            json={"session_id": user.session_id},
            headers={"Authorization": f"Bearer {user.token}"},
            timeout=120,
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    async def _one(self, i: int, user: UserSpec, pool: ThreadPoolExecutor, wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        viewer = None
        if i < self.viewers:
            viewer = Viewer(self.platform_urls[i % len(self.platform_urls)], user)
            self._viewers.append(viewer)
            await viewer.open()
        placement = Placement(requested=time.monotonic())
        self.results.append(placement)
        try:
            status, body = await loop.run_in_executor(pool, self._post, i, user)
        except requests.RequestException as exc:
            placement.status = type(exc).__name__
            return
        placement.responded = time.monotonic()
        error = body.get("error") or {}
        placement.status = f"{status} {error.get('code', '')}".strip()  # e.g. 503 no_capacity
        # 201: placed; 503 no_capacity: queued, placed once capacity frees up.
        detail = (body.get("error") or {}).get("detail") or {}
        placement.stream_id = str(body.get("stream_id") or detail.get("stream_id") or "")
        if not placement.stream_id:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self.fleet.placed_event(placement.stream_id).wait()
        times = self.fleet.placements.get(placement.stream_id)
        placement.placed = times[0][0] if times else None
        if viewer is not None:
            placement.offered = await viewer.offered(placement.stream_id, wait_s)

    def _ice_servers(self, url: str) -> int:
        user = self.users[0]
        response = requests.get(
            f"{url}/api/morpheus/ice_servers",
            headers={"Authorization": f"Bearer {user.token}"},
            timeout=60,
        )
        return response.status_code

    async def _warm_up(self, pool: ThreadPoolExecutor) -> None:
        """One authenticated request per web process before the clock starts: a platform
        that has served nobody yet still imports views on its first request."""
        loop = asyncio.get_running_loop()
        if self.users:
            await asyncio.gather(
                *(loop.run_in_executor(pool, self._ice_servers, url) for url in self.platform_urls)
            )

    async def place_all(self, wait_s: float = 60.0) -> dict[str, Any]:
        """One render_start per user at ``rate_per_s``; figures once every stream is placed
        (or waited ``wait_s`` for)."""
        tasks = []
        with ThreadPoolExecutor(self.threads) as pool:
            await self._warm_up(pool)
            started = time.monotonic()
            for i, user in enumerate(self.users):
                delay = started + i / self.rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._one(i, user, pool, wait_s)))
            sent_s = time.monotonic() - started
            await asyncio.gather(*tasks)
        return self.summary(sent_s)

    async def close(self) -> None:
        await asyncio.gather(*(v.close() for v in self._viewers), return_exceptions=True)

    def summary(self, sent_s: float) -> dict[str, Any]:
        placed = [p.placed - p.requested for p in self.results if p.placed is not None]
        http = [p.responded - p.requested for p in self.results if p.responded is not None]
        offered = [p.offered - p.requested for p in self.results if p.offered is not None]
        return {
            "render_starts": len(self.results),
            "offered_per_s": round(len(self.results) / max(sent_s, 1e-9), 1),
            "placed": len(placed),
            "placement_p50_ms": _ms(percentile(placed, 0.5)),
            "placement_p99_ms": _ms(percentile(placed, 0.99)),
            "placement_max_ms": _ms(max(placed, default=None)),
            "http_p50_ms": _ms(percentile(http, 0.5)),
            "http_p99_ms": _ms(percentile(http, 0.99)),
            "viewers": self.viewers,
            "offered": len(offered),
            "offer_p50_ms": _ms(percentile(offered, 0.5)),
            "offer_p99_ms": _ms(percentile(offered, 0.99)),
            "status": dict(Counter(str(p.status) for p in self.results)),
        }


async def failover(fleet: Fleet, agent: SimulatedAgent, wait_s: float) -> dict[str, Any]:
    """Crash ``agent``; how long until each of its streams got a ``stream_start`` on another
    worker (the platform declares a worker dead after ``MORPHEUS_WORKER_DEAD_AFTER_S`` of
    silence, then places its streams again)."""
    streams = fleet.kill(agent)
    killed = time.monotonic()
    name = agent.config.name

    def moved(sid: str) -> float | None:
        later = [t for t, w in fleet.placements.get(sid, []) if t > killed and w != name]
        return later[0] - killed if later else None

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(wait_s):
            while any(moved(s) is None for s in streams):
                fleet.any_placed.clear()
                await fleet.any_placed.wait()
    times = [t for t in map(moved, streams) if t is not None]
    return {
        "worker": name,
        "streams": len(streams),
        "stream_ids": streams,
        "moved": len(times),
        "moved_p50_s": None if not times else round(percentile(times, 0.5) or 0.0, 2),
        "moved_max_s": None if not times else round(max(times), 2),
    }


async def run_scenario(
    fleet: Fleet,
    placer: Placer,
    *,
    seconds: float,
    kill: bool,
    failover_wait_s: float,
    mark: Mark,
) -> dict[str, Any]:
    """Register every worker, place every user's stream, hold ``seconds`` of steady stats,
    then (``kill``) crash the busiest worker. ``mark`` is called at each phase boundary."""
    result: dict[str, Any] = {"workers": len(fleet.agents), "users": len(placer.users)}
    mark("connect")
    result["registered"] = await fleet.start()
    # 3: reports go in one stats_batch per worker a second; 2: one stats message per report.
    result["protocol_versions"] = sorted({a.protocol_version for a in fleet.agents})
    mark("registered", registered=result["registered"])
    result["placement"] = await placer.place_all(wait_s=30.0)
    mark("placed", **result["placement"])
    before, started = fleet.reports_sent(), time.monotonic()
    mark("steady_start")
    await asyncio.sleep(seconds)
    sent = fleet.reports_sent() - before
    elapsed = time.monotonic() - started
    mark("steady_end")
    result["steady"] = {
        "seconds": round(elapsed, 2),
        "streams": sum(a.streams for a in fleet.agents),
        "reports_sent": sent,
        "reports_sent_per_s": round(sent / elapsed, 1),
        "answers": fleet.answers(),
    }
    if kill:
        busiest = max(fleet.agents, key=lambda a: a.streams)
        mark("kill", worker=busiest.config.name)
        result["failover"] = await failover(fleet, busiest, failover_wait_s)
        mark("failover_end")
    await placer.close()
    await fleet.stop()
    return result
