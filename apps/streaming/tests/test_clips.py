"""The host switches the session's animation clip for everyone (apps/streaming/clips.py): over
the real session WebSocket (ASGI application, Redis channel layer), to every socket of the
session and to the worker that streams it; others are refused with a code."""

from typing import Any

import pytest
from channels.db import database_sync_to_async as db

from apps.accounts.services import token_pair_issue
from apps.scenes.tests.factories import SceneVersionFactory
from apps.sessions.tests.conftest import _fresh_channel_layer  # noqa: F401  (an autouse fixture)
from apps.sessions.tests.sockets import expect, joined_socket, send
from apps.streaming import services
from apps.streaming.tests.messages import worker_messages

pytestmark = pytest.mark.django_db(transaction=True)

CLIPS = [{"name": "Survey", "duration": 3.4}, {"name": "Walk", "duration": 0.7}]
SPAWN = {
    "source": "bounds",
    "position": [40.0, 60.0, 120.0],
    "yaw": 0.3,
    "pitch": -0.2,
    "scale": 100.0,
    "framing": {"position": [40.0, 60.0, 120.0], "yaw": 0.3, "pitch": -0.2},
    "cameras": [],
}


def _token(user: Any) -> str:
    return token_pair_issue(user=user).access


def _animated_session(owner: Any, make_session: Any) -> Any:
    """A session on a ready version whose processing found two clips (made directly: the
    processing itself is tested in apps/scenes/tests/test_playback.py)."""
    version = SceneVersionFactory(
        scene__owner=owner,
        scene__name="fox",
        number=1,
        file="scenes/x/fox.glb",
        original_name="fox.glb",
        clips=CLIPS,
        default_clip="Walk",
        spawn=SPAWN,
    )
    session = make_session(owner)
    session.scene_version = version
    session.save(update_fields=["scene_version"])
    return session


async def test_the_host_switches_the_clip_for_everyone_and_others_may_not(
    make_user: Any, make_session: Any, online_worker: Any
) -> None:
    host, guest = await db(make_user)(), await db(make_user)()
    session = await db(_animated_session)(host, make_session)
    worker = await db(online_worker)("clips")
    await db(services.stream_start)(user=host, session_id=session.id)
    start = (await db(worker_messages)(worker))[0]
    assert (start["type"], start["clip"]) == ("stream_start", "Walk")  # the creator's default
    assert start["world_scale"] == 100.0  # the scene's scale: the worker's eyes grow with it

    host_ws, established = await joined_socket(session.id, await db(_token)(host))
    guest_ws, _ = await joined_socket(session.id, await db(_token)(guest))
    try:
        # What the viewer needs before its first frame: where to start, the clips, the clip.
        assert established["scene"] == {
            "spawn": {k: SPAWN[k] for k in ("source", "position", "yaw", "pitch", "scale")},
            "clips": CLIPS,
            "clip": "Walk",
        }
        await expect(host_ws, "hermes:participant_joined")

        # A participant who is not the host: refused, nothing changes.
        await send(guest_ws, "hermes:clip_change", {"clip": "Survey"})
        assert (await expect(guest_ws, "error"))["code"] == "not_host"
        # The host, with a name the scene lacks: refused with the names it has.
        await send(host_ws, "hermes:clip_change", {"clip": "Run"})
        error = await expect(host_ws, "error")
        assert (error["code"], error["detail"]) == ("unknown_clip", {"clips": ["Survey", "Walk"]})
        await send(host_ws, "hermes:clip_change", {"clip": 3})
        assert (await expect(host_ws, "error"))["code"] == "invalid_clip"
        assert await db(worker_messages)(worker) == []

        # The host switches: every socket hears it, the worker is told, the session keeps it.
        await send(host_ws, "hermes:clip_change", {"clip": "Survey"})
        for ws in (host_ws, guest_ws):
            changed = await expect(ws, "hermes:clip_changed")
            assert changed["clip"] == "Survey"
        assert await db(worker_messages)(worker) == [
            {"type": "clip_change", "session_id": str(session.id), "clip": "Survey"}
        ]
        await db(session.refresh_from_db)()
        assert session.animation_clip == "Survey"

        # A stream started later (a new viewer, a failover) begins on the host's clip.
        await db(services.stream_start)(user=guest, session_id=session.id)
        starts = [m for m in await db(worker_messages)(worker) if m["type"] == "stream_start"]
        assert starts[-1]["clip"] == "Survey"
    finally:
        await host_ws.disconnect()
        await guest_ws.disconnect()


async def test_a_static_scene_has_no_clip_to_switch(make_user: Any, make_session: Any) -> None:
    host = await db(make_user)()
    session = await db(make_session)(host)  # no scene at all
    ws, established = await joined_socket(session.id, await db(_token)(host))
    try:
        assert established["scene"] is None
        await send(ws, "hermes:clip_change", {"clip": "Walk"})
        assert (await expect(ws, "error"))["code"] == "no_animation"
    finally:
        await ws.disconnect()
