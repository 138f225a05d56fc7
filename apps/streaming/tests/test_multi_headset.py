"""Two users in one session, end to end: a real daphne, two real worker processes and two
synthetic headsets in this process.

Placement is sticky per session: the second stream goes to the worker that already runs the
first even though the other worker is idle. Each headset sees the other: the worker draws
the session's other participants into each picture (the pattern source marks each one with a
grey square at the bottom of the left eye; the 3D renderer draws a sphere where they are,
which needs a scene and more CPU than this test should take), and the session socket carries
``hermes:poses`` snapshots holding the other participant.
"""

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from apps.accounts.services import roles_sync
from apps.accounts.tests.factories import DEFAULT_PASSWORD
from apps.core.testing import Processes, database_url_for, wait_until
from apps.streaming import services
from apps.streaming.models import Stream, StreamingWorker
from workers.headset.client import HeadsetOptions, SyntheticHeadset

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

EYE_W, EYE_H = 256, 144
# PatternSource draws the first other participant as a 16x16 square of luma 200 here.
AVATAR = (slice(EYE_H - 22, EYE_H - 10), slice(10, 22))
CONTROL = (slice(EYE_H - 22, EYE_H - 10), slice(60, 72))  # same rows, no avatar


def _still(p: tuple[float, float, float]) -> Any:
    """A head that does not move: the picture changes only if something else does."""
    return lambda t: (p, (0.0, 0.0, 0.0, 1.0))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def _start_worker(
    processes: Processes, url: str, name: str, *, max_streams: int = 2
) -> StreamingWorker:
    worker, token = services.worker_create(name=name)
    args = [
        "-m", "workers.streaming", "--platform-url", url, "--token", token, "--name", name,
        "--max-streams", str(max_streams), "--heartbeat-s", "0.5",
        "--rung-sizes", f"{EYE_W}x{EYE_H}", "--max-fps", "30", "--no-render-governor",
    ]  # fmt: skip
    processes.start(name, args, {"NVENC_ENABLED": "0"})
    return worker


def _online(processes: Processes, worker: StreamingWorker) -> None:
    def check() -> bool:
        worker.refresh_from_db()
        return worker.status == StreamingWorker.Status.ONLINE

    wait_until(check, f"worker {worker.name}: {processes.log(worker.name)}")


def _region(picture: Any, region: tuple[slice, slice]) -> float:
    return float(np.asarray(picture)[region].mean())


async def _wait_picture(headset: SyntheticHeadset, check: Any, within_s: float) -> Any:
    """Decoded pictures until ``check(picture)`` holds; returns that picture."""
    async with asyncio.timeout(within_s):
        while True:
            await headset.wait_frames(len(headset.frames) + 1, within_s)
            if headset.picture is not None and check(headset.picture):
                return headset.picture


def _platform(processes: Processes, *, max_streams: int) -> str:
    """A real daphne and two online workers (w1, w2); returns the platform's URL."""
    url = processes.daphne(
        "daphne",
        {
            "DJANGO_SETTINGS_MODULE": "apps.streaming.tests.e2e_settings",
            "DATABASE_URL": database_url_for(connection.settings_dict["NAME"]),
        },
    )
    workers = [_start_worker(processes, url, n, max_streams=max_streams) for n in ("w1", "w2")]
    for worker in workers:
        _online(processes, worker)
    connections.close_all()  # the headsets run in another thread's loop
    return url


def _headset(
    url: str, user: Any, position: tuple[float, float, float], session_id: str | None = None
) -> SyntheticHeadset:
    return SyntheticHeadset(
        HeadsetOptions(
            url, user.username, DEFAULT_PASSWORD, session_id=session_id, seconds=0, fps=30,
            pose_at=_still(position), keep_picture=True,
        )
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _alice_then_bob(
    url: str, alice: Any, bob: Any
) -> AsyncIterator[tuple[SyntheticHeadset, SyntheticHeadset, Any, Any]]:
    """Alice streams alone, holding still; Bob joins her session 2 m in front of her. Yields
    (alice's headset, bob's, her picture alone, her first picture with his avatar); both
    headsets close at the end."""
    a = _headset(url, alice, (0.0, 1.6, 0.0))
    b: SyntheticHeadset | None = None
    try:
        await a.start()
        await a.wait_frames(10, 30)
        alone = await _wait_picture(a, lambda p: True, 10)
        b = _headset(url, bob, (0.0, 1.6, -2.0), session_id=a.session_id)
        await b.start()
        await b.wait_frames(10, 30)
        together = await _wait_picture(a, lambda p: _region(p, AVATAR) > 180, 20)
        yield a, b, alone, together
    finally:
        if b is not None:
            await b.close()
        await a.close()
        await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
def test_two_headsets_share_a_worker_and_see_each_other(
    processes: Processes, make_user: Any
) -> None:
    roles_sync()  # transaction=True flushed the role groups
    alice, bob = make_user("participant"), make_user("participant")
    url = _platform(processes, max_streams=2)

    async def scenario() -> dict[str, Any]:
        async with _alice_then_bob(url, alice, bob) as (a, b, alone, together):
            # Bob's poses reach the worker over his pose channel; Alice's pictures carry his
            # avatar although her own head has not moved (``together``).
            streams = {
                s.pk: s.worker_id
                async for s in Stream.objects.filter(pk__in=[a.stream_id, b.stream_id])
            }
            # Bob moves: his pose on the session socket reaches Alice in a snapshot.
            # (His worker also forwards the pose of his pose channel, 0.0: wait for the moved one.)
            poses = asyncio.ensure_future(
                _poses_with(a, str(b.participant_id), lambda pose: pose["p"][0] > 0.4)
            )
            for seq in range(1, 40):
                await b.send_event(
                    "hermes:pose",
                    {"p": [0.5, 1.6, -2.0], "q": [0, 0, 0, 1], "t": seq * 33.0, "seq": seq},
                )
                if poses.done():
                    break
                await asyncio.sleep(0.033)  # a 30 Hz pose stream, not a synchronisation
            snapshot = await asyncio.wait_for(poses, 10)
            return {
                "alone": alone,
                "together": together,
                "streams": streams,
                "snapshot": snapshot,
                "b_frames": len(b.frames),
                "b_picture": b.picture,
                "bob": str(b.participant_id),
                "a_sizes": {(f.width, f.height) for f in a.frames},
            }

    outcome = asyncio.run(scenario())

    # Sticky placement: both streams on one worker, though the other one was idle.
    assert len(outcome["streams"]) == 2
    assert len(set(outcome["streams"].values())) == 1
    assert None not in outcome["streams"].values()
    # Both decode stamped frames of the stereo size.
    assert outcome["b_frames"] >= 10
    assert outcome["a_sizes"] == {(2 * EYE_W, EYE_H)}
    # Alice held still: only the avatar region changed when Bob arrived.
    assert _region(outcome["alone"], AVATAR) < 160
    assert _region(outcome["together"], AVATAR) > 180
    assert abs(_region(outcome["together"], CONTROL) - _region(outcome["alone"], CONTROL)) < 8
    # Bob sees Alice too (she has a pose channel on the same worker).
    assert _region(outcome["b_picture"], AVATAR) > 180
    bob_pose = outcome["snapshot"]["poses"][outcome["bob"]]
    assert bob_pose["p"] == pytest.approx([0.5, 1.6, -2.0])


async def _poses_with(
    headset: SyntheticHeadset,
    participant: str,
    matching: Callable[[dict[str, Any]], bool] = lambda pose: True,
) -> dict[str, Any]:
    while True:
        data = await headset.wait_event("hermes:poses", 10)
        pose = (data.get("poses") or {}).get(participant)
        if pose is not None and matching(pose):
            return data


@pytest.mark.django_db(transaction=True)
def test_two_headsets_on_two_workers_see_each_other(processes: Processes, make_user: Any) -> None:
    """Cross-worker sessions: each worker streams one headset (one stream each), so neither
    knows the other participant in-process; their poses cross through the platform at the
    session tick and each picture shows the other's avatar."""
    roles_sync()
    alice, bob = make_user("participant"), make_user("participant")
    url = _platform(processes, max_streams=1)
    spare: StreamingWorker | None = None

    async def scenario() -> dict[str, Any]:
        async with _alice_then_bob(url, alice, bob) as (a, b, alone, together):
            b_sees = await _wait_picture(b, lambda p: _region(p, AVATAR) > 180, 20)
            nonlocal spare
            spare = await sync_to_async(_start_worker)(processes, url, "w3", max_streams=1)
            streams = {
                s.pk: s.worker_id
                async for s in Stream.objects.filter(pk__in=[a.stream_id, b.stream_id])
            }
            # Alice's worker dies. Bob's worker stops drawing her once her poses stop coming
            # (2 s); her stream moves to w3, whose poses bring her back into Bob's picture.
            await sync_to_async(_online)(processes, spare)
            # Her worker, whichever it is: ties between idle workers go by a hash of (session,
            # worker), not by name.
            hers = await Stream.objects.select_related("worker").aget(pk=a.stream_id)
            assert hers.worker is not None
            processes.procs[hers.worker.name].send_signal(signal.SIGKILL)
            b_alone = await _wait_picture(b, lambda p: _region(p, AVATAR) < 160, 20)
            await a.wait_frames(10, 40, placement=2)
            a_again = await _wait_picture(a, lambda p: _region(p, AVATAR) > 180, 20)
            b_again = await _wait_picture(b, lambda p: _region(p, AVATAR) > 180, 20)
            moved = await Stream.objects.aget(pk=a.stream_id)
            return {
                "alone": alone,
                "together": together,
                "b_sees": b_sees,
                "streams": streams,
                "b_alone": b_alone,
                "a_again": a_again,
                "b_again": b_again,
                "moved_to": moved.worker_id,
            }

    outcome = asyncio.run(scenario())

    # Two streams on two different workers.
    assert len(set(outcome["streams"].values())) == 2
    assert None not in outcome["streams"].values()
    # Alice held still; Bob's avatar appeared in her picture, drawn by her worker from poses
    # that came from Bob's worker through the platform. And Bob sees Alice the same way.
    assert _region(outcome["alone"], AVATAR) < 160
    assert _region(outcome["together"], AVATAR) > 180
    assert abs(_region(outcome["together"], CONTROL) - _region(outcome["alone"], CONTROL)) < 8
    assert _region(outcome["b_sees"], AVATAR) > 180
    # After the kill: Alice streams from w3, and both pictures show the other again.
    assert spare is not None
    assert outcome["moved_to"] == spare.id
    assert _region(outcome["b_alone"], AVATAR) < 160
    assert _region(outcome["a_again"], AVATAR) > 180
    assert _region(outcome["b_again"], AVATAR) > 180
