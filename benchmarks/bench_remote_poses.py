"""Cross-worker sessions: how old a remote participant's pose is when the other worker gets it.

Two streaming workers share a session, each streaming ``--per-worker`` participants. On worker
A the headsets' poses arrive at 90 Hz (``SessionPoses.update``, as a peer's pose channel does)
and the agent's own tick code (``WorkerAgent._pose_ticks``, 30 Hz) sends them to the platform;
the platform's real worker socket consumer puts them in the session's pose room, whose ticker
(``SESSION_TICK_HZ``, 30) sends worker B one ``remote_poses`` per tick. Added age = when B
receives a pose minus when A's peer received it (one process, one clock). Also counted:
``remote_poses`` messages per tick to B (O(1) per worker per session, with N poses in it).

The platform side is the real consumer in this process (Channels' test communicator), real
PostgreSQL and Redis (the Redis pose store, as with several daphne processes):

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<fresh db> REDIS_URL=redis://... \\
        PYTHONPATH=. .venv/bin/python benchmarks/bench_remote_poses.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._hermes_bench import platform_env
from workers.protocol import percentiles


class _Forward:
    """The agent's socket: its messages go into the platform consumer of worker A."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    async def send(self, text: str) -> None:
        await self.comm.send_to(text_data=text)


async def _run(seconds: float, per_worker: int) -> dict[str, Any]:
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings

    from apps.accounts.services import user_create
    from apps.sessions import services as sessions
    from apps.streaming import services
    from vrplatform.asgi import application
    from workers.protocol import Pose, RemotePoses, parse_from_platform
    from workers.streaming.agent import AgentConfig, WorkerAgent
    from workers.streaming.session import SessionPoses

    # Setup only: users are created with a fast hasher (PBKDF2 under load starved the
    # worker sockets' heartbeats, and the platform declared them dead).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    db = database_sync_to_async
    from apps.streaming.models import Stream, StreamingWorker

    # A throwaway database: workers and streams of an earlier run would be reaped now and
    # their streams placed on this run's workers.
    await db(lambda: (Stream.objects.all().delete(), StreamingWorker.objects.all().delete()))()
    stamp = time.time_ns()

    async def worker_socket(name: str) -> Any:
        _, token = await db(services.worker_create)(name=name)
        comm = WebsocketCommunicator(
            application,
            "/ws/morpheus/worker/",
            subprotocols=["vrplatform.v1", f"bearer.{token}"],
        )
        assert (await comm.connect(timeout=10))[0]
        register = {"type": "register", "worker_id": name, "versions": [2]}
        caps = {"max_streams": per_worker}
        await comm.send_to(text_data=json.dumps(register | {"capabilities": caps}))
        assert json.loads(await comm.receive_from(timeout=10))["type"] == "registered"
        beats.append(asyncio.ensure_future(heartbeats(comm, name)))
        return comm

    async def heartbeats(comm: Any, name: str) -> None:
        while True:  # as a worker does: the platform declares a silent worker dead
            await comm.send_to(text_data=json.dumps({"type": "heartbeat", "worker_id": name}))
            await asyncio.sleep(2.0)

    beats: list[asyncio.Future[None]] = []

    a_comm = await worker_socket(f"bench-a-{stamp}")
    owner = await db(user_create)(username=f"o{stamp}", password="x" * 16, roles=["participant"])
    session = await db(sessions.session_create)(
        owner=owner, name="bench", max_participants=2 * per_worker + 1
    )
    local: list[str] = []

    async def streams_on(comm: Any, n: int) -> list[str]:
        pids = []
        for i in range(n):
            user = await db(user_create)(
                username=f"u{stamp}{len(local)}{i}{id(comm)}",
                password="x" * 16,
                roles=["participant"],
            )
            participant = await db(sessions.participant_join)(session_id=session.id, user=user)
            await db(services.stream_start)(user=user, session_id=session.id)
            start = json.loads(await comm.receive_from(timeout=10))
            assert start["type"] == "stream_start"
            pids.append(str(participant.pk))
        return pids

    local = await streams_on(a_comm, per_worker)  # A is full: the next ones go to B
    b_comm = await worker_socket(f"bench-b-{stamp}")
    await streams_on(b_comm, per_worker)

    agent = WorkerAgent(AgentConfig(platform_url="http://bench", token="t"))  # noqa: S106
    agent._ws = _Forward(a_comm)  # type: ignore[assignment]
    poses = agent._sessions[str(session.id)] = SessionPoses()
    ages: list[float] = []
    messages = 0
    stop = asyncio.Event()

    async def headsets() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            now_ms = time.time() * 1000.0
            for pid in local:
                poses.update(pid, Pose(p=(0.0, 1.6, 0.0), t=now_ms, seq=seq))
            await asyncio.sleep(1 / 90)

    async def worker_b() -> None:
        nonlocal messages
        while not stop.is_set():
            # Not receive_from(timeout=...): its timeout cancels the application.
            try:
                output = await asyncio.wait_for(b_comm.output_queue.get(), 1.0)
            except TimeoutError:
                continue
            message = parse_from_platform(output["text"])
            if isinstance(message, RemotePoses):
                now_ms = time.time() * 1000.0
                messages += 1
                ages.extend(now_ms - pose.t for pose in message.poses.values())

    tasks = [
        asyncio.ensure_future(headsets()),
        asyncio.ensure_future(worker_b()),
        asyncio.ensure_future(agent._pose_ticks()),
    ]
    await asyncio.sleep(2.0)  # warm-up: rooms started, Redis connections open
    ages.clear()
    messages = 0
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    stop.set()
    for task in tasks + beats:
        task.cancel()
    await asyncio.gather(*tasks, *beats, return_exceptions=True)
    await a_comm.disconnect()
    await b_comm.disconnect()
    return {
        "poses": len(ages),
        "age_ms_p50": round(statistics.median(ages), 1),
        "age_ms_p99": percentiles(ages, digits=1).p99,
        "age_ms_max": round(max(ages), 1),
        "remote_poses_messages_per_s": round(messages / elapsed, 1),
        "poses_per_message": round(len(ages) / max(messages, 1), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--per-worker", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with platform_env():
        results = [asyncio.run(_run(args.seconds, args.per_worker)) for _ in range(args.runs)]
    print(
        json.dumps(
            {
                "per_worker": args.per_worker,
                "seconds": args.seconds,
                "age_ms_p99_median": statistics.median(r["age_ms_p99"] for r in results),
                "age_ms_p50_median": statistics.median(r["age_ms_p50"] for r in results),
                "runs": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
