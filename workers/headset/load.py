"""A WebSocket load generator whose users behave like the platform's real clients.

Each simulated user is what ``static/client/js`` (api.js, socket.js) does in a browser:

- **Signs in once.** Users listed with a password sign in through ``/api/athena/authenticate``
  at their ramp slot (measured apart: ``signin_ms``); the rest arrive with the token pair of an
  earlier sign-in. Nobody sends a password again.
- **Opens the session socket** (bearer token in the subprotocol), joins (one member in
  ``spectator_every`` as a spectator) and **heartbeats every** ``SESSION_HEARTBEAT_S`` (the web
  client's interval; the server echoes each beat: a beat never echoed on a socket that stayed
  up is *lost*, an echo gives the round trip).
- **Sends no poses by default**: a streamed participant's poses go to its streaming worker over
  WebRTC, not through the platform; the platform's pose snapshots (``hermes:poses``) come from
  the workers' relay and are counted where they arrive. ``pose_mix`` puts socket poses back for
  tests and for the older benchmark's mix.
- **Reconnects like the web client** when its socket drops: it rotates its token pair with the
  refresh token (``/api/athena/wisdom_refresh``, never the password; the server rotates and
  replay-protects refresh tokens, so a broken rotation shows as users that never come back),
  then reconnects after exponential backoff with jitter (``backoff_s``: netstats.js
  ``backoffDelay``). A refresh that cannot reach a process tries the next, as a balancer would.

A reconnect storm (a daphne process killed under its sockets, as ``benchmarks/bench_load.py``
does) is measured from the first drop to the last dropped user joined again (``storm_s``).

    python -m workers.headset.load --users users.json --url ws://127.0.0.1:8000 \\
        --url ws://127.0.0.1:8001 --seconds 60 --ramp-per-s 500

``users.json``: ``[{"session_id", "access", "refresh"} | {"session_id", "username",
"password"}, ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from workers.protocol import (
    BEARER_PREFIX,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_SESSION_ENDED,
    CLOSE_UNAUTHORIZED,
    SESSION_HEARTBEAT_S,
    SUBPROTOCOL,
    percentile,
)

logger = logging.getLogger("headset.load")

FINAL_CLOSES = {CLOSE_SESSION_ENDED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND}  # socket.js: no retry
REFRESH_MARGIN_S = 60.0  # api.js REFRESH_MARGIN_MS
ECHO_GRACE_S = 10.0  # at the end, a beat not echoed within this is lost (late ones count late)


def token_expires_at(token: str) -> float:
    """The ``exp`` claim of a JWT (unverified: the client only schedules with it); 0 when
    it has none."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims.get("exp") or 0.0)
    except (IndexError, ValueError):
        return 0.0


@dataclass(frozen=True)
class LoadOptions:
    urls: list[str]  # ws://host:port of each web process; users are spread round-robin
    seconds: float = 60.0  # steady state after the last user joined
    ramp_per_s: float = 500.0  # new users per second
    heartbeat_s: float = SESSION_HEARTBEAT_S
    # (share of users, poses per second) sent through the socket; none by default (see above)
    pose_mix: tuple[tuple[float, float], ...] = ()
    spectator_every: int = 8  # the n-th member of each 8 joins as a spectator; 0: none
    connect_timeout_s: float = 30.0
    storm_wait_s: float = 0.0  # > 0: after `seconds`, wait up to this long for a storm to heal
    # "always": rotate the pair before every reconnect of a dropped socket (the worst case: an
    # outage longer than the access token's life); "expiring": as api.js, only after a 4401
    # close or within REFRESH_MARGIN_S of the access token's expiry.
    refresh: str = "always"
    ready_file: str | None = None  # written when every user joined once (the storm may start)


def backoff_s(attempt: int, base_s: float = 0.5, max_s: float = 15.0, spread: float = 0.2) -> float:
    """netstats.js ``backoffDelay``: base * 2^attempt, capped, +-20 % jitter."""
    raw = min(max_s, base_s * 2 ** max(0, attempt))
    return raw * (1 - spread + 2 * spread * random.random())  # noqa: S311 (jitter)


@dataclass
class Tally:
    connected: int = 0  # socket opens, reconnects included
    connect_failed: int = 0
    joined: int = 0  # session_established, rejoins included
    established_now: int = 0
    token_ms: dict[str, list[float]] = field(  # "signin", "refresh": each call that got a pair
        default_factory=lambda: {"signin": [], "refresh": []}
    )
    heartbeats_sent: int = 0
    heartbeats_echoed: int = 0
    heartbeats_lost: int = 0  # sent on a socket that stayed up, never echoed
    heartbeats_cut: int = 0  # in flight when their socket dropped (the storm): not lost
    heartbeat_rtt_ms: list[float] = field(default_factory=list)
    snapshots: int = 0  # hermes:poses messages received
    poses_sent: int = 0
    pose_latency_ms: list[float] = field(default_factory=list)
    pose_seen: dict[tuple[str, int], set[int]] = field(default_factory=dict)  # (sid, pid)
    pose_sent_seqs: dict[tuple[str, int], int] = field(default_factory=dict)
    drops: dict[int, float] = field(default_factory=dict)  # user -> first drop (monotonic)
    rejoins: dict[int, float] = field(default_factory=dict)  # user -> joined again
    gave_up: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    closed_by_server: Counter[str] = field(default_factory=Counter)


TOKEN_CALLS_IN_FLIGHT = 16


@dataclass
class Run:
    """What every user of one run shares."""

    options: LoadOptions
    tally: Tally
    http: httpx.AsyncClient
    http_urls: list[str]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    # Token calls in flight at once (TOKEN_CALLS_IN_FLIGHT). Users queue here, not in httpx:
    # its pool scans every waiting request on each release, so 5,000 users of a reconnect
    # storm queued there stalled this whole event loop (heartbeats included) for minutes.
    token_slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(TOKEN_CALLS_IN_FLIGHT)
    )


class User:
    def __init__(self, n: int, entry: dict[str, str], url: str, pose_hz: float, role: str) -> None:
        self.n = n
        self.session_id = entry["session_id"]
        self.access = entry.get("access", "")
        self.refresh_token = entry.get("refresh", "")
        self.credentials = (entry.get("username", ""), entry.get("password", ""))
        self.url = f"{url}/ws/hermes/sessions/{self.session_id}/"
        self.pose_hz = pose_hz
        self.role = role
        self.participant_id = 0
        self.pending: dict[float, float] = {}  # heartbeat t -> sent at (monotonic)
        self.established = asyncio.Event()
        self.ever_joined = asyncio.Event()

    # --- tokens -------------------------------------------------------------------------
    async def token_call(self, run: Run, path: str, body: dict[str, str]) -> int:
        """POST to the first process that answers, as a balancer would; the status code, 0
        when none answered. Sets the new pair on 200."""
        count = len(run.http_urls)
        for k in range(count):
            base = run.http_urls[(self.n + k) % count]
            try:
                async with run.token_slots:
                    response = await run.http.post(f"{base}{path}", json=body)
            except httpx.HTTPError as exc:
                run.tally.errors[f"{path.rsplit('/', 1)[1]}:{type(exc).__name__}"] += 1
                continue
            if response.status_code == 200:
                pair = response.json()
                self.access, self.refresh_token = pair["access"], pair["refresh"]
            else:
                run.tally.errors[f"{path.rsplit('/', 1)[1]}:{response.status_code}"] += 1
            return int(response.status_code)
        return 0

    async def sign_in(self, run: Run) -> bool:
        username, password = self.credentials
        body = {"username": username, "password": password}
        return await self.token_retry(run, "/api/athena/authenticate", lambda: body, "signin")

    async def rotate(self, run: Run) -> bool:
        """api.js ``refreshTokens``: one single-use refresh token for a new pair."""
        return await self.token_retry(
            run, "/api/athena/wisdom_refresh", lambda: {"refresh": self.refresh_token}, "refresh"
        )

    async def token_retry(
        self, run: Run, path: str, body: Callable[[], dict[str, str]], what: str
    ) -> bool:
        """A token call, retried with backoff while no process can answer (down, 429, 5xx);
        a refusal (401, 400) is the end of this sign-in. Timed apart per ``what``."""
        for attempt in range(12):
            if run.stop.is_set():
                return False
            started = time.monotonic()
            status = await self.token_call(run, path, body())
            if status == 200:
                run.tally.token_ms[what].append((time.monotonic() - started) * 1000.0)
                return True
            if 400 <= status < 500 and status != 429:
                break
            await asyncio.sleep(backoff_s(attempt))
        run.tally.gave_up[what] += 1
        return False

    def must_rotate(self, run: Run) -> bool:
        if run.options.refresh == "always":
            return True
        return token_expires_at(self.access) - time.time() < REFRESH_MARGIN_S

    # --- the socket's life ----------------------------------------------------------------
    async def run(self, run: Run) -> None:
        if not self.access and not await self.sign_in(run):
            return
        attempt = 0
        refresh = False
        while not run.stop.is_set():
            if refresh:
                if not await self.rotate(run):
                    return
                refresh = False
            code = await self.connection(run)
            if run.stop.is_set():
                return
            if code in FINAL_CLOSES:
                run.tally.gave_up[f"close:{code}"] += 1
                return
            established = self.established.is_set()
            if established:  # socket.js resets its backoff once established
                attempt = 0
            # An established socket that dropped (or was refused its token) reconnects with a
            # fresh pair; a connect that never opened, or was turned away as overloaded
            # (4503), keeps the pair it has.
            refresh = code == CLOSE_UNAUTHORIZED or (established and self.must_rotate(run))
            self.established.clear()
            await asyncio.sleep(backoff_s(attempt))
            attempt += 1

    async def connection(self, run: Run) -> int | None:
        """One socket from open to close: the close code, or None when it never opened."""
        tally, options = run.tally, run.options
        try:
            ws = await asyncio.wait_for(
                websockets.connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL, f"{BEARER_PREFIX}{self.access}"],  # type: ignore[list-item]
                    open_timeout=options.connect_timeout_s,
                    ping_interval=None,  # the platform's heartbeat is the liveness check
                    max_queue=None,
                ),
                options.connect_timeout_s,
            )
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            tally.connect_failed += 1
            tally.errors[f"connect:{type(exc).__name__}"] += 1
            return None
        tally.connected += 1
        reader = asyncio.create_task(self.read(ws, run))
        senders: list[asyncio.Task[None]] = []
        try:
            join: dict[str, Any] = {"role": self.role} if self.role else {}
            await ws.send(json.dumps({"event": "hermes:session_join", "data": join}))
            senders.append(asyncio.create_task(self.heartbeats(ws, run)))
            joined = asyncio.create_task(self.established.wait())
            await asyncio.wait({joined, reader}, return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
            if self.participant_id and self.pose_hz > 0:
                senders.append(asyncio.create_task(self.poses(ws, run)))
            stopping = asyncio.create_task(run.stop.wait())
            await asyncio.wait({stopping, reader}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
        except websockets.ConnectionClosed:
            pass  # the reader records how it closed
        finally:
            for task in senders:
                task.cancel()
        if run.stop.is_set() and not reader.done():
            if self.established.is_set():
                tally.established_now += 1
            await self.await_echoes(ECHO_GRACE_S)
            tally.heartbeats_lost += len(self.pending)
            self.pending.clear()
            await ws.close()
            await asyncio.wait({reader}, timeout=5)
            reader.cancel()
            return None
        # Dropped under us: beats in flight went with the socket.
        tally.heartbeats_cut += len(self.pending)
        self.pending.clear()
        if self.ever_joined.is_set():
            tally.drops.setdefault(self.n, time.monotonic())
            tally.rejoins.pop(self.n, None)
        await ws.close()
        code = ws.close_code
        return int(code) if code is not None else 1006

    async def await_echoes(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self.pending and time.monotonic() < deadline:  # noqa: ASYNC110 (bounded, at the end)
            await asyncio.sleep(0.05)

    async def heartbeats(self, ws: Any, run: Run) -> None:
        """socket.js: ``setInterval(beat, HEARTBEAT_MS)`` from the open."""
        with contextlib.suppress(websockets.ConnectionClosed):  # the reader records the close
            while True:
                await asyncio.sleep(run.options.heartbeat_s)
                t = time.time() * 1000.0 + self.n * 1e-6  # unique per user
                await ws.send(json.dumps({"event": "athena:heartbeat", "data": {"t": t}}))
                self.pending[t] = time.monotonic()
                run.tally.heartbeats_sent += 1

    async def poses(self, ws: Any, run: Run) -> None:
        seq = 0
        period = 1.0 / self.pose_hz
        key = (self.session_id, self.participant_id)
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                seq += 1
                pose: dict[str, Any] = {"p": [0.0, 1.6, seq * 1e-3], "q": [0.0, 0.0, 0.0, 1.0]}
                pose.update({"t": time.time() * 1000.0, "seq": seq})
                await ws.send(json.dumps({"event": "hermes:pose", "data": pose}))
                run.tally.poses_sent += 1
                run.tally.pose_sent_seqs[key] = seq
                await asyncio.sleep(period)

    async def read(self, ws: Any, run: Run) -> None:
        try:
            async for raw in ws:
                self.on_message(json.loads(raw), run.tally)
        except websockets.ConnectionClosed as exc:
            if not run.stop.is_set():
                run.tally.closed_by_server[str(exc.rcvd.code if exc.rcvd else "none")] += 1

    def on_message(self, message: dict[str, Any], tally: Tally) -> None:
        event, data = message.get("event"), message.get("data") or {}
        if event == "athena:heartbeat":
            sent = self.pending.pop(float(data.get("t") or 0.0), None)
            if sent is not None:
                tally.heartbeats_echoed += 1
                tally.heartbeat_rtt_ms.append((time.monotonic() - sent) * 1000.0)
        elif event == "hermes:poses":
            tally.snapshots += 1
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
            if self.n in tally.drops and self.n not in tally.rejoins:
                tally.rejoins[self.n] = time.monotonic()
            self.ever_joined.set()
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


def _role(n: int, every: int) -> str:
    return "spectator" if every > 0 and n % every == every - 1 else ""


async def _storm_healed(tally: Tally, within_s: float) -> None:
    """Until some socket dropped and every dropped user joined again (or ``within_s``)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if tally.drops and len(tally.rejoins) == len(tally.drops):
            return
        await asyncio.sleep(0.1)


async def run_load(users: list[dict[str, str]], options: LoadOptions) -> dict[str, Any]:
    http_urls = [u.replace("ws://", "http://").replace("wss://", "https://") for u in options.urls]
    # Token calls in flight at once, all users together: each holds a PostgreSQL connection
    # on the server for its duration (100 by default, shared with the sockets' threads).
    limits = httpx.Limits(
        max_connections=TOKEN_CALLS_IN_FLIGHT, max_keepalive_connections=TOKEN_CALLS_IN_FLIGHT
    )
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
        run = Run(options, Tally(), http, http_urls)
        people = []
        for n, entry in enumerate(users):
            role = _role(n, options.spectator_every)  # spectators send no poses
            hz = 0.0 if role else _pose_rate(n, options.pose_mix)
            people.append(User(n, entry, options.urls[n % len(options.urls)], hz, role))
        started = time.monotonic()
        tasks = []
        for n, person in enumerate(people):
            tasks.append(asyncio.create_task(person.run(run)))
            lag = n / options.ramp_per_s - (time.monotonic() - started)
            if lag > 0:
                await asyncio.sleep(lag)
        # Ramp over: every user joined once, or its task ended (refused, gave up), or a
        # connect timeout passed since the last one started.
        deadline = time.monotonic() + 2 * options.connect_timeout_s
        for person, task in zip(people, tasks, strict=True):
            wait = asyncio.create_task(person.ever_joined.wait())
            left = max(0.0, deadline - time.monotonic())
            await asyncio.wait({wait, task}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            wait.cancel()
        ramp_s = time.monotonic() - started
        if options.ready_file:
            await asyncio.to_thread(Path(options.ready_file).write_text, str(ramp_s))
        await asyncio.sleep(options.seconds)
        if options.storm_wait_s > 0:
            await _storm_healed(run.tally, options.storm_wait_s)
        run.stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return summary(run.tally, len(users), ramp_s, options)


def summary(tally: Tally, users: int, ramp_s: float, options: LoadOptions) -> dict[str, Any]:
    sent = sum(tally.pose_sent_seqs.values())
    seen = sum(len(s) for s in tally.pose_seen.values())
    storm_s = None
    if tally.drops and tally.rejoins:
        storm_s = round(max(tally.rejoins.values()) - min(tally.drops.values()), 2)
    return {
        "users": users,
        "ramp_s": round(ramp_s, 1),
        "steady_s": options.seconds,
        "heartbeat_s": options.heartbeat_s,
        "refresh": options.refresh,
        "connected_at_end": tally.established_now,
        "connected": tally.connected,
        "connect_failed": tally.connect_failed,
        "joined": tally.joined,
        "signins": len(tally.token_ms["signin"]),
        "signin_ms_p50": percentile(tally.token_ms["signin"], 0.5),
        "signin_ms_p99": percentile(tally.token_ms["signin"], 0.99),
        "refreshes": len(tally.token_ms["refresh"]),
        "refresh_ms_p50": percentile(tally.token_ms["refresh"], 0.5),
        "refresh_ms_p99": percentile(tally.token_ms["refresh"], 0.99),
        "heartbeats_sent": tally.heartbeats_sent,
        "heartbeats_echoed": tally.heartbeats_echoed,
        "heartbeats_lost": tally.heartbeats_lost,
        "heartbeats_cut_by_drop": tally.heartbeats_cut,
        "heartbeat_rtt_ms_p50": percentile(tally.heartbeat_rtt_ms, 0.5),
        "heartbeat_rtt_ms_p99": percentile(tally.heartbeat_rtt_ms, 0.99),
        "dropped": len(tally.drops),
        "rejoined": len(tally.rejoins),
        "storm_s": storm_s,
        "snapshots_received": tally.snapshots,
        "poses_sent": tally.poses_sent,
        "pose_seqs_seen_by_peers": seen,
        "pose_senders": len(tally.pose_sent_seqs),
        "pose_sent_seqs": sent,
        "pose_latency_ms_p50": percentile(tally.pose_latency_ms, 0.5),
        "pose_latency_ms_p99": percentile(tally.pose_latency_ms, 0.99),
        "gave_up": dict(tally.gave_up),
        "errors": dict(tally.errors),
        "closed_by_server": dict(tally.closed_by_server),
    }


def closing_line(report: dict[str, Any]) -> str:
    """The one line ``make test-load`` ends with."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    storm = report.get("storm_s")
    return (
        f"load: connected {report['connected_at_end']}/{report['users']}, heartbeat p50/p99 "
        f"{ms(report['heartbeat_rtt_ms_p50'])}/{ms(report['heartbeat_rtt_ms_p99'])} ms, "
        f"lost {report['heartbeats_lost']}, reconnect storm "
        f"{'-' if storm is None else f'{storm:.1f}'} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", required=True, help="JSON file (see the module docstring)")
    parser.add_argument("--url", action="append", required=True, help="ws://host:port")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp-per-s", type=float, default=500.0)
    parser.add_argument("--heartbeat-s", type=float, default=SESSION_HEARTBEAT_S)
    parser.add_argument("--poses", action="store_true", help="5%% at 10 Hz, 15%% at 2 Hz")
    parser.add_argument("--storm-wait-s", type=float, default=0.0)
    parser.add_argument("--ready-file", default=None)
    parser.add_argument("--refresh", choices=["always", "expiring"], default="always")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with open(args.users) as fh:
        users = json.load(fh)
    options = LoadOptions(
        urls=args.url,
        seconds=args.seconds,
        ramp_per_s=args.ramp_per_s,
        heartbeat_s=args.heartbeat_s,
        pose_mix=((0.05, 10.0), (0.15, 2.0)) if args.poses else (),
        storm_wait_s=args.storm_wait_s,
        ready_file=args.ready_file,
        refresh=args.refresh,
    )
    print(json.dumps(asyncio.run(run_load(users, options)), indent=2))  # CLI output
    return 0


if __name__ == "__main__":
    sys.exit(main())
